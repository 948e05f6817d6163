package io.mmdit4j.video;

import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.awt.image.BufferedImage;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Video frames as packed 8-bit RGB ({@code R,G,B} per pixel, rows top to bottom), one {@code byte[W·H·3]} per frame.
 * Sizes are checked here, before any native call: at least one frame, 1 to {@link #MAX_SIDE} pixels a side.
 */
public record RgbFrames(int width, int height, List<byte[]> frames) {
    /** Largest width or height accepted (8K); larger clips are rejected up front instead of failing in a codec. */
    public static final int MAX_SIDE = 8192;

    public RgbFrames {
        if (width < 1 || height < 1 || width > MAX_SIDE || height > MAX_SIDE) {
            throw new IllegalArgumentException("frame size " + width + "x" + height + ": each side must be 1 to " + MAX_SIDE + " pixels");
        }
        if (frames == null || frames.isEmpty()) throw new IllegalArgumentException("a video needs at least one frame, got none");
        int expected = width * height * 3;
        for (int i = 0; i < frames.size(); i++) {
            byte[] f = frames.get(i);
            if (f == null || f.length != expected) {
                throw new IllegalArgumentException("frame " + i + " has " + (f == null ? "no data" : f.length + " bytes")
                        + ", expected " + width + "x" + height + "x3 = " + expected);
            }
        }
        frames = List.copyOf(frames);
    }

    public int count() {
        return frames.size();
    }

    public byte[] frame(int i) {
        return frames.get(i);
    }

    /** Frame {@code i} as an RGB image. */
    public BufferedImage image(int i) {
        byte[] f = frames.get(i);
        BufferedImage out = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        int[] row = new int[width];
        for (int y = 0; y < height; y++) {
            for (int x = 0, p = y * width * 3; x < width; x++, p += 3) {
                row[x] = (f[p] & 0xff) << 16 | (f[p + 1] & 0xff) << 8 | (f[p + 2] & 0xff);
            }
            out.setRGB(0, y, width, 1, row, 0, width);
        }
        return out;
    }

    /**
     * Frames from a tensor:
     * <ul>
     * <li>uint8 {@code [F, H, W, 3]}, used as is;</li>
     * <li>floating {@code [F, 3, H, W]} in [-1, 1], the VAE decoder's output convention: mapped as
     *     {@code AutoencoderKL.toImage} then {@code PngImages.toRgb} do, {@code rint(clamp(x·0.5 + 0.5, 0, 1)·255)},
     *     NaN to 0;</li>
     * <li>floating {@code [1, 3, F, H, W]} in [-1, 1], a video VAE's {@code [B, C, F, H, W]} output for one video,
     *     mapped the same way.</li>
     * </ul>
     */
    public static RgbFrames fromTensor(Tensor video) {
        if (video.dim() == 5) {
            long[] s = Tensors.shape(video);
            if (s[0] != 1 || s[1] != 3 || !video.is_floating_point()) {
                throw new IllegalArgumentException("video tensor has shape " + Arrays.toString(s) + " and dtype " + video.scalar_type()
                        + ", expected a floating [1, 3, F, H, W] (one video; select a batch row first)");
            }
            try (PointerScope scope = new PointerScope()) {
                return fromTensor(video.select(0, 0).permute(1, 0, 2, 3)); // [F, 3, H, W]
            }
        }
        long[] s = Tensors.shape(video);
        ScalarType type = video.scalar_type();
        if (s.length != 4) throw new IllegalArgumentException("video tensor has shape " + Arrays.toString(s) + ", expected [F, H, W, 3] uint8, [F, 3, H, W] float or [1, 3, F, H, W] float");
        boolean bytes = type.value == ScalarType.Byte.value; // JavaCPP enums compare by value
        if (!bytes && !video.is_floating_point()) {
            throw new IllegalArgumentException("video tensor has dtype " + type + ", expected uint8 [F, H, W, 3] or a floating [F, 3, H, W]");
        }
        long f = s[0], h = bytes ? s[1] : s[2], w = bytes ? s[2] : s[3], c = bytes ? s[3] : s[1];
        if (c != 3) {
            throw new IllegalArgumentException("video tensor has shape " + Arrays.toString(s) + ", expected "
                    + (bytes ? "[F, H, W, 3] for uint8" : "[F, 3, H, W] for " + type));
        }
        if (f < 1) throw new IllegalArgumentException("video tensor has shape " + Arrays.toString(s) + ": no frames");
        if (h < 1 || w < 1 || h > MAX_SIDE || w > MAX_SIDE) {
            throw new IllegalArgumentException("video tensor has shape " + Arrays.toString(s) + ": each side must be 1 to " + MAX_SIDE + " pixels");
        }
        int width = (int) w, height = (int) h, n = width * height * 3;
        List<byte[]> frames = new ArrayList<>((int) Math.min(f, Integer.MAX_VALUE));
        for (long i = 0; i < f; i++) {
            try (PointerScope scope = new PointerScope()) {
                Tensor frame = video.select(0, i);
                frames.add(bytes ? copyBytes(frame, n) : toBytes(Tensors.toFloats(frame), width, height));
            }
        }
        return new RgbFrames(width, height, frames);
    }

    private static byte[] copyBytes(Tensor frame, int n) {
        Tensor cpu;
        try (org.bytedeco.pytorch.Device d = new org.bytedeco.pytorch.Device("cpu")) {
            cpu = frame.to(d, ScalarType.Byte).contiguous();
        }
        byte[] out = new byte[n];
        new BytePointer(cpu.data_ptr()).get(out);
        return out;
    }

    /** Planar [3, H, W] floats in [-1, 1] to packed RGB bytes. */
    private static byte[] toBytes(float[] px, int width, int height) {
        int plane = width * height;
        byte[] out = new byte[plane * 3];
        for (int i = 0; i < plane; i++) {
            out[3 * i] = byte8(px[i]);
            out[3 * i + 1] = byte8(px[plane + i]);
            out[3 * i + 2] = byte8(px[2 * plane + i]);
        }
        return out;
    }

    private static byte byte8(float v) {
        if (Float.isNaN(v)) return 0;
        double c = Math.min(1.0, Math.max(0.0, v * 0.5 + 0.5));
        return (byte) Math.rint(c * 255.0);
    }
}
