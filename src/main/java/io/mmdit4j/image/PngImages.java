package io.mmdit4j.image;

import io.mmdit4j.io.FileErrors;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.pytorch.Tensor;

import javax.imageio.IIOImage;
import javax.imageio.ImageIO;
import javax.imageio.ImageTypeSpecifier;
import javax.imageio.ImageWriter;
import javax.imageio.metadata.IIOMetadata;
import javax.imageio.metadata.IIOMetadataNode;
import javax.imageio.stream.ImageOutputStream;
import java.awt.image.BufferedImage;
import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Arrays;
import java.util.Map;

/**
 * PNG output with generation settings as text chunks, readable by any PNG tool, and read back by {@code mmdit inspect} and
 * {@code generate --from}: {@code tEXt} when the text is Latin-1, else UTF-8 {@code iTXt} (as PIL, and so A1111, write
 * them; readers that know only {@code tEXt} still see ASCII settings). Files appear atomically.
 */
public final class PngImages {
    private PngImages() {}

    private static final String FORMAT = "javax_imageio_png_1.0";
    private static final java.nio.charset.Charset LATIN_1 = java.nio.charset.StandardCharsets.ISO_8859_1;

    /** One image [3, H, W] in [0, 1] to 8-bit RGB, rounding half to even as numpy's {@code (x*255).round()}. */
    public static BufferedImage toRgb(Tensor image) {
        long[] s = Tensors.shape(image);
        if (s.length != 3 || s[0] != 3) throw new IllegalArgumentException("image has shape " + Arrays.toString(s) + ", expected [3, H, W]");
        int h = (int) s[1], w = (int) s[2];
        float[] px = Tensors.toFloats(image);
        BufferedImage out = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        int plane = h * w;
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                int i = y * w + x;
                out.setRGB(x, y, (byte8(px[i]) << 16) | (byte8(px[plane + i]) << 8) | byte8(px[2 * plane + i]));
            }
        }
        return out;
    }

    private static int byte8(float v) {
        double c = Math.min(1.0, Math.max(0.0, v)); // NaN becomes 0 below
        long r = (long) Math.rint(c * 255.0);
        return Double.isNaN(v) ? 0 : (int) r;
    }

    public static void write(Path file, BufferedImage image, Map<String, String> text) {
        try {
            Path dir = file.toAbsolutePath().getParent();
            Files.createDirectories(dir);
            Path tmp = Files.createTempFile(dir, "." + file.getFileName(), ".part");
            try {
                try (ImageOutputStream out = ImageIO.createImageOutputStream(tmp.toFile())) {
                    write(out, image, text);
                }
                io.mmdit4j.runtime.Files2.readableByAll(tmp); // temp files are created 0600
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            } finally {
                Files.deleteIfExists(tmp);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": cannot write PNG: " + e.getMessage(), e);
        }
    }

    /** The PNG {@link #write} writes to a file (the same bytes), in memory: e.g. a server's response. */
    public static byte[] encode(BufferedImage image, Map<String, String> text) {
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        try {
            try (ImageOutputStream out = new javax.imageio.stream.MemoryCacheImageOutputStream(bytes)) { // no temp file
                write(out, image, text);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot encode PNG: " + e.getMessage(), e);
        }
        return bytes.toByteArray();
    }

    /** The image with each text entry as an uncompressed iTXt chunk. */
    private static void write(ImageOutputStream out, BufferedImage image, Map<String, String> text) throws IOException {
        ImageWriter writer = ImageIO.getImageWritersByFormatName("png").next();
        try {
            IIOMetadata meta = writer.getDefaultImageMetadata(ImageTypeSpecifier.createFromRenderedImage(image), writer.getDefaultWriteParam());
            IIOMetadataNode root = new IIOMetadataNode(FORMAT);
            IIOMetadataNode itxt = new IIOMetadataNode("iTXt");
            IIOMetadataNode ttxt = new IIOMetadataNode("tEXt");
            text.forEach((k, v) -> {
                if (LATIN_1.newEncoder().canEncode(v)) { // as PIL's add_text and A1111 write it: tEXt when Latin-1 holds it
                    IIOMetadataNode e = new IIOMetadataNode("tEXtEntry");
                    e.setAttribute("keyword", k);
                    e.setAttribute("value", v);
                    ttxt.appendChild(e);
                    return;
                }
                IIOMetadataNode e = new IIOMetadataNode("iTXtEntry");
                e.setAttribute("keyword", k);
                e.setAttribute("compressionFlag", "FALSE");
                e.setAttribute("compressionMethod", "0");
                e.setAttribute("languageTag", "");
                e.setAttribute("translatedKeyword", "");
                e.setAttribute("text", v);
                itxt.appendChild(e);
            });
            if (ttxt.hasChildNodes()) root.appendChild(ttxt);
            if (itxt.hasChildNodes()) root.appendChild(itxt);
            meta.mergeTree(FORMAT, root);
            writer.setOutput(out);
            writer.write(null, new IIOImage(image, null, meta), null);
        } finally {
            writer.dispose();
        }
    }

    /** {@link #readText(Path)} of a PNG in memory (e.g. a server's response); {@code origin} names it in errors. */
    public static Map<String, String> readText(byte[] png, String origin) {
        return PngText.parse(origin, png);
    }

    /**
     * The text chunks (tEXt, zTXt and iTXt) of a PNG, keyword to text in file order. Every chunk's CRC is checked and
     * compressed text is bounded ({@link PngText}); anything wrong with the file is an {@link ImageFormatException}.
     */
    public static Map<String, String> readText(Path file) {
        try (InputStream in = new BufferedInputStream(Files.newInputStream(file), 1 << 16)) {
            return PngText.read(file.toString(), in);
        } catch (NoSuchFileException e) {
            throw new ImageFormatException(file + ": no such file");
        } catch (IOException e) {
            throw new ImageFormatException(file + ": cannot read PNG: " + FileErrors.reason(e), e);
        }
    }
}
