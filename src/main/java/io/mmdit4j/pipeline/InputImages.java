package io.mmdit4j.pipeline;

import io.mmdit4j.io.FileErrors;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.InterpolateFuncOptions;
import org.bytedeco.pytorch.LongVector;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.bytedeco.pytorch.kBicubic;

import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.stream.ImageInputStream;
import java.awt.image.BufferedImage;
import java.awt.image.Raster;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.List;

import static org.bytedeco.pytorch.global.torch.cat;
import static org.bytedeco.pytorch.global.torch.interpolate;

/**
 * The pictures a request starts from (init images, inpainting masks): read as diffusers' image processor sees a PIL image
 * ({@code convert("RGB")} / {@code convert("L")}), their digests, and their tensors. An 8-bit PNG reads exactly (grey
 * images by their raw samples, not through Java's grey colour space); other formats decode with Java's readers, so a
 * JPEG's pixels may differ by one from libjpeg's. Every failure is an {@link InvalidRequestException} naming the file.
 */
public final class InputImages {
    private InputImages() {}

    /** The SHA-256 of a file's bytes, lowercase hex. */
    public static String sha256(Path file, String what) {
        try (InputStream in = Files.newInputStream(file)) {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            byte[] buf = new byte[1 << 16];
            for (int n; (n = in.read(buf)) > 0; ) md.update(buf, 0, n);
            return HexFormat.of().formatHex(md.digest());
        } catch (NoSuchFileException e) {
            throw new InvalidRequestException(what + " " + file + ": no such file");
        } catch (IOException e) {
            throw new InvalidRequestException(what + " " + file + ": cannot read: " + FileErrors.reason(e), e);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Fails unless the file exists and its bytes are those recorded. */
    public static void requireDigest(Path file, String sha256, String what) {
        String now = sha256(file, what);
        if (!now.equals(sha256)) {
            throw new InvalidRequestException(what + " " + file + " has changed since it was recorded (SHA-256 " + sha256.substring(0, 12) + "…, now "
                    + now.substring(0, 12) + "…): the same settings would make another image; give the file again to use it as it is now");
        }
    }

    /** Width and height from the file's header. */
    public static int[] size(Path file, String what) {
        try (ImageInputStream in = ImageIO.createImageInputStream(file.toFile())) {
            if (in == null) throw new InvalidRequestException(what + " " + file + ": cannot open");
            Iterator<ImageReader> readers = ImageIO.getImageReaders(in);
            if (!readers.hasNext()) throw new InvalidRequestException(what + " " + file + ": not an image format Java can read (PNG, JPEG, BMP, GIF)");
            ImageReader r = readers.next();
            try {
                r.setInput(in);
                return new int[] {r.getWidth(0), r.getHeight(0)};
            } finally {
                r.dispose();
            }
        } catch (IOException e) {
            throw new InvalidRequestException(what + " " + file + ": cannot read: " + FileErrors.reason(e), e);
        }
    }

    static BufferedImage read(Path file, String what) {
        if (!Files.isRegularFile(file)) throw new InvalidRequestException(what + " " + file + ": no such file");
        try {
            BufferedImage img = ImageIO.read(file.toFile());
            if (img == null) throw new InvalidRequestException(what + " " + file + ": not an image format Java can read (PNG, JPEG, BMP, GIF)");
            return img;
        } catch (IOException e) {
            throw new InvalidRequestException(what + " " + file + ": cannot read: " + FileErrors.reason(e), e);
        }
    }

    /** An 8-bit one-band raster (a grey PNG): its samples are the picture's values. */
    private static boolean rawGrey(BufferedImage img) {
        Raster r = img.getRaster();
        return r.getNumBands() == 1 && img.getColorModel().getComponentSize(0) == 8 && img.getColorModel().getNumComponents() == 1;
    }

    /** PIL's {@code convert("RGB")}: {@code [H, W, 3]} bytes (alpha dropped, grey repeated). */
    static byte[] rgb(BufferedImage img) {
        int w = img.getWidth(), h = img.getHeight();
        byte[] out = new byte[w * h * 3];
        boolean grey = rawGrey(img);
        Raster raster = img.getRaster();
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                int i = (y * w + x) * 3;
                if (grey) {
                    byte v = (byte) raster.getSample(x, y, 0);
                    out[i] = v;
                    out[i + 1] = v;
                    out[i + 2] = v;
                } else {
                    int argb = img.getRGB(x, y);
                    out[i] = (byte) (argb >> 16);
                    out[i + 1] = (byte) (argb >> 8);
                    out[i + 2] = (byte) argb;
                }
            }
        }
        return out;
    }

    /** PIL's {@code convert("L")}: raw grey samples, else the ITU-R 601-2 luma {@code (19595 R + 38470 G + 7471 B + 2^15) >> 16}. */
    static byte[] grey(BufferedImage img) {
        int w = img.getWidth(), h = img.getHeight();
        byte[] out = new byte[w * h];
        boolean grey = rawGrey(img);
        Raster raster = img.getRaster();
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                if (grey) out[y * w + x] = (byte) raster.getSample(x, y, 0);
                else {
                    int argb = img.getRGB(x, y);
                    int r = (argb >> 16) & 255, g = (argb >> 8) & 255, b = argb & 255;
                    out[y * w + x] = (byte) ((19595 * r + 38470 * g + 7471 * b + 0x8000) >> 16);
                }
            }
        }
        return out;
    }

    /**
     * The images as the VAE's input {@code [n, 3, height, width]} float32 in [-1, 1] ({@code 2·(u8/255) − 1}, diffusers'
     * preprocessing). An image of another size is resized (bicubic with antialiasing on [0, 1] values, then clamped), which
     * diffusers does with PIL's Lanczos instead: give images at the request's size for results identical to diffusers'.
     */
    public static Tensor pixels(List<Path> files, int width, int height, String what) {
        try (PointerScope scope = new PointerScope()) {
            Tensor[] rows = new Tensor[files.size()];
            for (int i = 0; i < rows.length; i++) {
                BufferedImage img = read(files.get(i), what);
                Tensor u8 = bytes(rgb(img), img.getHeight(), img.getWidth(), 3).permute(2, 0, 1).unsqueeze(0); // [1, 3, h, w]
                Tensor x = u8.to(ScalarType.Float).div(new Scalar(255.0));
                rows[i] = resize(x, width, height);
            }
            Tensor x = rows.length == 1 ? rows[0] : cat(new TensorVector(rows), 0);
            return Tensors.keep(x.mul(new Scalar(2.0)).sub(new Scalar(1.0)).contiguous());
        }
    }

    /**
     * The masks binarised as diffusers' mask processor does ({@code u8/255}, then {@code < 0.5 → 0}, {@code ≥ 0.5 → 1}):
     * {@code [n, 1, height, width]} float32 of 0 and 1 ({@code mask_condition}). Another size is resized before the threshold.
     */
    public static Tensor masks(List<Path> files, int width, int height) {
        try (PointerScope scope = new PointerScope()) {
            Tensor[] rows = new Tensor[files.size()];
            for (int i = 0; i < rows.length; i++) {
                BufferedImage img = read(files.get(i), "mask");
                Tensor u8 = bytes(grey(img), img.getHeight(), img.getWidth(), 1).permute(2, 0, 1).unsqueeze(0); // [1, 1, h, w]
                Tensor x = resize(u8.to(ScalarType.Float).div(new Scalar(255.0)), width, height);
                rows[i] = x.ge(new Scalar(0.5)).to(ScalarType.Float);
            }
            return Tensors.keep((rows.length == 1 ? rows[0] : cat(new TensorVector(rows), 0)).contiguous());
        }
    }

    private static Tensor bytes(byte[] data, int h, int w, int c) {
        Tensor t = org.bytedeco.pytorch.global.torch.empty(new long[] {h, w, c}, new org.bytedeco.pytorch.TensorOptions(ScalarType.Byte),
                new org.bytedeco.pytorch.MemoryFormatOptional());
        new org.bytedeco.javacpp.BytePointer(t.data_ptr()).put(data);
        return t;
    }

    /** [1, C, h, w] in [0, 1] to {@code height × width}: unchanged when the size is already that. */
    private static Tensor resize(Tensor x, int width, int height) {
        if (x.size(2) == height && x.size(3) == width) return x;
        InterpolateFuncOptions o = new InterpolateFuncOptions();
        o.size().put(new LongVector(height, width));
        o.mode().put(new kBicubic());
        o.align_corners().put(false);
        o.antialias().put(true);
        return interpolate(x, o).clamp(new org.bytedeco.pytorch.ScalarOptional(new Scalar(0.0)), new org.bytedeco.pytorch.ScalarOptional(new Scalar(1.0)));
    }
}
