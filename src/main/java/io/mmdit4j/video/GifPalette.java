package io.mmdit4j.video;

import org.bytedeco.ffmpeg.avutil.AVFrame;
import org.bytedeco.javacpp.BytePointer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * One 256-colour palette for a whole clip (so frames do not flicker), and the mapping of RGB pixels to it.
 * Clips with at most 256 distinct colours keep them exactly; others get a median cut of a 15-bit histogram.
 * No dithering: this is a preview format.
 */
final class GifPalette {
    private final int[] colors;            // 0xRRGGBB
    private final Map<Integer, Integer> exact; // colour -> index, when the clip has <= 256 colours
    private final byte[] binIndex;         // 5-bit-per-channel bin -> index otherwise

    private GifPalette(int[] colors, Map<Integer, Integer> exact, byte[] binIndex) {
        this.colors = colors;
        this.exact = exact;
        this.binIndex = binIndex;
    }

    static GifPalette of(RgbFrames frames) {
        Map<Integer, Integer> exact = new HashMap<>();
        outer:
        for (byte[] f : frames.frames()) {
            for (int p = 0; p < f.length; p += 3) {
                int rgb = rgb(f, p);
                if (!exact.containsKey(rgb)) {
                    if (exact.size() == 256) {
                        exact = null;
                        break outer;
                    }
                    exact.put(rgb, exact.size());
                }
            }
        }
        if (exact != null) {
            int[] colors = new int[exact.size()];
            exact.forEach((rgb, i) -> colors[i] = rgb);
            return new GifPalette(colors, exact, null);
        }
        return medianCut(frames);
    }

    private static GifPalette medianCut(RgbFrames frames) {
        long[] count = new long[1 << 15];
        long[][] sum = new long[3][1 << 15];
        for (byte[] f : frames.frames()) {
            for (int p = 0; p < f.length; p += 3) {
                int r = f[p] & 0xff, g = f[p + 1] & 0xff, b = f[p + 2] & 0xff;
                int bin = (r >> 3) << 10 | (g >> 3) << 5 | (b >> 3);
                count[bin]++;
                sum[0][bin] += r;
                sum[1][bin] += g;
                sum[2][bin] += b;
            }
        }
        List<int[]> boxes = new ArrayList<>();
        boxes.add(java.util.stream.IntStream.range(0, 1 << 15).filter(i -> count[i] > 0).toArray());
        while (boxes.size() < 256) {
            // Split the most populated box that still holds more than one bin, at its median along the widest axis.
            int best = -1;
            long bestCount = -1;
            for (int i = 0; i < boxes.size(); i++) {
                int[] box = boxes.get(i);
                if (box.length < 2) continue;
                long n = 0;
                for (int bin : box) n += count[bin];
                if (n > bestCount) {
                    bestCount = n;
                    best = i;
                }
            }
            if (best < 0) break;
            int[] box = boxes.get(best);
            int axis = widestAxis(box);
            int shift = 10 - 5 * axis;
            Integer[] sorted = Arrays.stream(box).boxed().toArray(Integer[]::new);
            Arrays.sort(sorted, Comparator.comparingInt(bin -> (bin >> shift) & 31));
            long half = bestCount / 2, acc = 0;
            int cut = 1;
            for (int i = 0; i < sorted.length - 1; i++) {
                acc += count[sorted[i]];
                cut = i + 1;
                if (acc >= half) break;
            }
            int[] lo = new int[cut], hi = new int[sorted.length - cut];
            for (int i = 0; i < sorted.length; i++) {
                if (i < cut) lo[i] = sorted[i];
                else hi[i - cut] = sorted[i];
            }
            boxes.set(best, lo);
            boxes.add(hi);
        }
        int[] colors = new int[boxes.size()];
        byte[] binIndex = new byte[1 << 15];
        for (int i = 0; i < boxes.size(); i++) {
            long n = 0, r = 0, g = 0, b = 0;
            for (int bin : boxes.get(i)) {
                n += count[bin];
                r += sum[0][bin];
                g += sum[1][bin];
                b += sum[2][bin];
                binIndex[bin] = (byte) i;
            }
            colors[i] = (int) ((r + n / 2) / n) << 16 | (int) ((g + n / 2) / n) << 8 | (int) ((b + n / 2) / n);
        }
        return new GifPalette(colors, null, binIndex);
    }

    private static int widestAxis(int[] box) {
        int best = 0, bestRange = -1;
        for (int axis = 0; axis < 3; axis++) {
            int shift = 10 - 5 * axis, min = 31, max = 0;
            for (int bin : box) {
                int v = (bin >> shift) & 31;
                min = Math.min(min, v);
                max = Math.max(max, v);
            }
            if (max - min > bestRange) {
                bestRange = max - min;
                best = axis;
            }
        }
        return best;
    }

    private static int rgb(byte[] f, int p) {
        return (f[p] & 0xff) << 16 | (f[p + 1] & 0xff) << 8 | (f[p + 2] & 0xff);
    }

    private int index(byte[] f, int p) {
        if (exact != null) return exact.get(rgb(f, p));
        return binIndex[((f[p] & 0xff) >> 3) << 10 | ((f[p + 1] & 0xff) >> 3) << 5 | ((f[p + 2] & 0xff) >> 3)] & 0xff;
    }

    /** Writes a packed RGB frame into a PAL8 AVFrame: indices into plane 0, the palette into plane 1. */
    void fill(byte[] rgb, int width, int height, AVFrame frame) {
        int stride = frame.linesize(0);
        byte[] plane = new byte[stride * height];
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x++) plane[y * stride + x] = (byte) index(rgb, (y * width + x) * 3);
        }
        frame.data(0).put(plane, 0, plane.length);
        // The palette is 256 native-endian (little-endian here) 0xAARRGGBB words: bytes B, G, R, A.
        byte[] pal = new byte[1024];
        for (int i = 0; i < colors.length; i++) {
            pal[4 * i] = (byte) colors[i];
            pal[4 * i + 1] = (byte) (colors[i] >> 8);
            pal[4 * i + 2] = (byte) (colors[i] >> 16);
            pal[4 * i + 3] = (byte) 0xff;
        }
        BytePointer p = frame.data(1);
        p.put(pal, 0, pal.length);
    }
}
