package io.mmdit4j.video;

import io.mmdit4j.image.PngImages;
import io.mmdit4j.runtime.ProcessMemory;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Encode with FFmpeg, decode back: frame count, size, metadata and pixels close to the input. */
class VideoWriterTest {
    @TempDir
    Path dir;

    private static final Map<String, String> SETTINGS = settings();

    private static Map<String, String> settings() {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("mmdit4j", "{\"prompt\":\"a cat, in 4K\",\"seed\":42,\"steps\":30}");
        m.put("prompt", "ein Kätzchen ☕ im Schnee");
        m.put("guidance_scale", "3.5");
        return m;
    }

    /** A smooth gradient that moves with the frame index, so frames differ and order is checkable. */
    static RgbFrames gradient(int w, int h, int count) {
        List<byte[]> frames = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            byte[] f = new byte[w * h * 3];
            for (int y = 0; y < h; y++) {
                for (int x = 0; x < w; x++) {
                    int p = (y * w + x) * 3;
                    f[p] = (byte) (40 + 170 * x / Math.max(1, w - 1));
                    f[p + 1] = (byte) (40 + 170 * y / Math.max(1, h - 1));
                    f[p + 2] = (byte) (30 + 20 * i);
                }
            }
            frames.add(f);
        }
        return new RgbFrames(w, h, frames);
    }

    /** Mean absolute difference over the common top-left region (the decoded clip may be padded). */
    static double meanAbsError(RgbFrames expected, RgbFrames actual) {
        assertEquals(expected.count(), actual.count(), "frame count");
        double sum = 0;
        long n = 0;
        for (int i = 0; i < expected.count(); i++) {
            byte[] e = expected.frame(i), a = actual.frame(i);
            for (int y = 0; y < expected.height(); y++) {
                for (int x = 0; x < expected.width(); x++) {
                    for (int ch = 0; ch < 3; ch++) {
                        sum += Math.abs((e[(y * expected.width() + x) * 3 + ch] & 0xff) - (a[(y * actual.width() + x) * 3 + ch] & 0xff));
                        n++;
                    }
                }
            }
        }
        return sum / n;
    }

    private VideoReader.Decoded roundTrip(String name, VideoOptions options, VideoCodec expectedCodec, double maxError) {
        RgbFrames in = gradient(64, 48, 9);
        Path file = dir.resolve(name);
        VideoWriter.Written w = VideoWriter.write(file, in, SETTINGS, options);
        assertEquals(expectedCodec, w.codec());
        assertEquals(64, w.width());
        assertEquals(48, w.height());
        VideoReader.Decoded d = VideoReader.read(file);
        assertEquals(9, d.frames().count(), "frames");
        assertEquals(64, d.frames().width());
        assertEquals(48, d.frames().height());
        double err = meanAbsError(in, d.frames());
        assertTrue(err < maxError, name + ": mean abs error " + err);
        System.out.printf("%s: %s, %d bytes, mean abs error %.2f%n", name, w.codec(), size(file), err);
        assertNoTempFiles();
        return d;
    }

    private void assertSettings(Map<String, String> metadata) {
        SETTINGS.forEach((k, v) -> assertEquals(v, metadata.get(k), "metadata " + k + " in " + metadata));
    }

    @Test
    void mp4UsesOpenH264AndKeepsSettings() {
        VideoReader.Decoded d = roundTrip("clip.mp4", VideoOptions.fps(8), VideoCodec.H264, 12);
        assertEquals("h264", d.info().codec());
        assertEquals(8.0, d.info().fps(), 1e-6);
        assertSettings(d.info().metadata());
        assertSettings(VideoReader.probe(dir.resolve("clip.mp4")).metadata());
    }

    @Test
    void mp4WithMpeg4() {
        VideoReader.Decoded d = roundTrip("clip4.MP4", VideoOptions.fps(12).withCodec(VideoCodec.MPEG4), VideoCodec.MPEG4, 12);
        assertEquals("mpeg4", d.info().codec());
        assertSettings(d.info().metadata());
    }

    @Test
    void webmUsesVp9() {
        VideoReader.Decoded d = roundTrip("clip.webm", VideoOptions.fps(24), VideoCodec.VP9, 12);
        assertEquals("vp9", d.info().codec());
        assertEquals(24.0, d.info().fps(), 1e-6);
        assertSettings(d.info().metadata());
    }

    @Test
    void gifPreview() {
        roundTrip("clip.gif", VideoOptions.fps(10), VideoCodec.GIF, 12);
    }

    @Test
    void gifCarriesTheSettingsAsCommentExtensions() throws IOException {
        Map<String, String> big = new LinkedHashMap<>(SETTINGS);
        big.put("parameters", "a long prompt ".repeat(100) + "\nSteps: 4, Seed: 1"); // more than one 255-byte sub-block
        Path gif = dir.resolve("clip.gif");
        VideoWriter.write(gif, gradient(32, 24, 3), big, VideoOptions.fps(10));
        VideoReader.Info info = VideoReader.probe(gif);
        big.forEach((k, v) -> assertEquals(v, info.metadata().get(k), "comment " + k));
        assertEquals(3, info.frames());
        assertEquals(big, GifComments.read(gif));
        assertEquals(3, VideoReader.read(gif).frames().count(), "the comments do not disturb decoding");
    }

    @Test
    void webmIsBitReproducibleAndReportsItsFrameCount() throws IOException {
        RgbFrames in = gradient(48, 32, 7);
        Path a = dir.resolve("a.webm"), b = dir.resolve("b.webm"), m1 = dir.resolve("a.mp4"), m2 = dir.resolve("b.mp4");
        VideoWriter.write(a, in, SETTINGS, VideoOptions.fps(8));
        VideoWriter.write(b, in, SETTINGS, VideoOptions.fps(8));
        assertTrue(java.util.Arrays.equals(Files.readAllBytes(a), Files.readAllBytes(b)), "the same frames and settings give the same WebM bytes");
        VideoWriter.write(m1, in, SETTINGS, VideoOptions.fps(8));
        VideoWriter.write(m2, in, SETTINGS, VideoOptions.fps(8));
        assertTrue(java.util.Arrays.equals(Files.readAllBytes(m1), Files.readAllBytes(m2)), "and MP4 bytes");
        assertEquals(7, VideoReader.probe(a).frames(), "WebM declares no count: the packets are counted");
    }

    @Test
    void mp4FallsBackToMpeg4WhenOpenH264CannotTakeTheSize() {
        // openh264 refuses sides below 16 pixels; 1x1 is padded to 2x2 and goes to mpeg4 instead.
        RgbFrames in = new RgbFrames(1, 1, List.of(new byte[] {(byte) 200, 100, 50}));
        VideoWriter.Written w = VideoWriter.write(dir.resolve("dot.mp4"), in, SETTINGS, VideoOptions.fps(1));
        assertEquals(VideoCodec.MPEG4, w.codec());
        assertEquals(2, w.width());
        assertEquals(2, w.height());
        VideoReader.Decoded d = VideoReader.read(dir.resolve("dot.mp4"));
        assertEquals(1, d.frames().count());
        assertSettings(d.info().metadata());
        // Forcing H.264 has no fallback: a clear error and no file.
        UncheckedIOException e = assertThrows(UncheckedIOException.class,
                () -> VideoWriter.write(dir.resolve("dot264.mp4"), in, SETTINGS, VideoOptions.fps(1).withCodec(VideoCodec.H264)));
        assertTrue(e.getMessage().contains("openh264 needs at least 16x16"), e.getMessage());
        assertFalse(Files.exists(dir.resolve("dot264.mp4")));
        assertNoTempFiles();
    }

    @Test
    void oddSizesArePaddedByRepeatingTheLastColumnAndRow() {
        RgbFrames in = gradient(33, 17, 3);
        for (String name : List.of("odd.mp4", "odd.webm")) {
            VideoWriter.Written w = VideoWriter.write(dir.resolve(name), in, SETTINGS, VideoOptions.fps(8));
            assertEquals(34, w.width(), name);
            assertEquals(18, w.height(), name);
            RgbFrames out = VideoReader.read(dir.resolve(name)).frames();
            assertEquals(34, out.width());
            assertEquals(18, out.height());
            double err = meanAbsError(in, out);
            assertTrue(err < 12, name + ": mean abs error " + err);
            // The added column repeats column 32, the added row repeats row 16 (up to coding error).
            byte[] f = out.frame(1);
            double edge = 0;
            for (int y = 0; y < 18; y++) edge += Math.abs((f[(y * 34 + 33) * 3] & 0xff) - (f[(y * 34 + 32) * 3] & 0xff));
            for (int x = 0; x < 34; x++) edge += Math.abs((f[(17 * 34 + x) * 3 + 1] & 0xff) - (f[(16 * 34 + x) * 3 + 1] & 0xff));
            assertTrue(edge / (18 + 34) < 12, name + ": padding differs from the edge by " + edge / (18 + 34));
        }
        VideoWriter.Written gif = VideoWriter.write(dir.resolve("odd.gif"), in, Map.of(), VideoOptions.fps(8));
        assertEquals(33, gif.width());
        assertEquals(17, gif.height());
        assertEquals(17, VideoReader.read(dir.resolve("odd.gif")).frames().height());
    }

    @Test
    void tensorsFollowTheVaeConvention() {
        // [F, 3, H, W] floats in [-1, 1]: -1 -> 0, 1 -> 255, 0 -> 128 (127.5 rounds half to even), out of range clamps, NaN -> 0.
        float[] v = new float[2 * 3 * 16 * 16];
        float[] probes = {-1f, 1f, 0f, 3f, -7f, Float.NaN};
        int[] expected = {0, 255, 128, 255, 0, 0};
        for (int i = 0; i < v.length; i++) v[i] = probes[i % probes.length];
        RgbFrames frames;
        try (PointerScope scope = new PointerScope()) {
            frames = RgbFrames.fromTensor(Tensors.fromFloats(v, 2, 3, 16, 16));
        }
        assertEquals(2, frames.count());
        assertEquals(16, frames.width());
        for (int f = 0; f < 2; f++) {
            for (int c = 0; c < 3; c++) {
                for (int p = 0; p < 256; p++) {
                    int src = ((f * 3 + c) * 256) + p;
                    assertEquals(expected[src % probes.length], frames.frame(f)[p * 3 + c] & 0xff, "frame " + f + " channel " + c + " pixel " + p);
                }
            }
        }
        // A video VAE's [1, 3, F, H, W] gives the same frames as [F, 3, H, W].
        float[] bcfhw = new float[v.length];
        for (int f = 0; f < 2; f++) {
            for (int c = 0; c < 3; c++) System.arraycopy(v, (f * 3 + c) * 256, bcfhw, (c * 2 + f) * 256, 256);
        }
        try (PointerScope scope = new PointerScope()) {
            RgbFrames five = RgbFrames.fromTensor(Tensors.fromFloats(bcfhw, 1, 3, 2, 16, 16));
            for (int f = 0; f < 2; f++) assertArrayEquals(frames.frame(f), five.frame(f));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> RgbFrames.fromTensor(Tensors.fromFloats(new float[2 * v.length], 2, 3, 2, 16, 16)));
            assertTrue(e.getMessage().contains("[1, 3, F, H, W]"), e.getMessage());
        }
        // uint8 [F, H, W, 3] is taken byte for byte, and written straight from the tensor.
        RgbFrames grad = gradient(32, 16, 2);
        float[] bytes = new float[2 * 32 * 16 * 3];
        for (int f = 0; f < 2; f++) {
            for (int i = 0; i < 32 * 16 * 3; i++) bytes[f * 32 * 16 * 3 + i] = grad.frame(f)[i] & 0xff;
        }
        try (PointerScope scope = new PointerScope()) {
            Tensor u8 = Tensors.fromFloats(bytes, 2, 16, 32, 3).to(org.bytedeco.pytorch.global.torch.ScalarType.Byte);
            RgbFrames back = RgbFrames.fromTensor(u8);
            for (int f = 0; f < 2; f++) assertArrayEquals(grad.frame(f), back.frame(f));
            VideoWriter.write(dir.resolve("tensor.mp4"), u8, SETTINGS, VideoOptions.fps(4));
            assertTrue(meanAbsError(grad, VideoReader.read(dir.resolve("tensor.mp4")).frames()) < 12);

            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> RgbFrames.fromTensor(Tensors.fromFloats(v, 2, 16, 16, 3)));
            assertTrue(e.getMessage().contains("[F, 3, H, W]"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> RgbFrames.fromTensor(Tensors.fromFloats(new float[0], 0, 3, 16, 16)));
            assertTrue(e.getMessage().contains("no frames"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> RgbFrames.fromTensor(Tensors.fromFloats(v, 6, 256)));
            assertTrue(e.getMessage().contains("expected [F, H, W, 3]"), e.getMessage());
        }
    }

    @Test
    void badInputIsRejectedBeforeAnyNativeCall() {
        RgbFrames ok = gradient(16, 16, 1);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> VideoWriter.write(dir.resolve("clip.avi"), ok, SETTINGS, VideoOptions.fps(8)));
        assertTrue(e.getMessage().contains("unknown video extension") && e.getMessage().contains(".mp4"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> VideoWriter.write(dir.resolve("mp4"), ok, SETTINGS, VideoOptions.fps(8)));
        e = assertThrows(IllegalArgumentException.class, () -> new RgbFrames(16, 16, List.of()));
        assertTrue(e.getMessage().contains("at least one frame"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new RgbFrames(16, 16, List.of(new byte[16 * 16 * 3], new byte[10])));
        assertTrue(e.getMessage().contains("frame 1 has 10 bytes"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new RgbFrames(100_000, 2, List.of(new byte[600_000])));
        assertTrue(e.getMessage().contains("8192"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new RgbFrames(0, 2, List.of(new byte[0])));
        assertThrows(IllegalArgumentException.class, () -> VideoOptions.fps(0));
        e = assertThrows(IllegalArgumentException.class,
                () -> VideoWriter.write(dir.resolve("clip.mp4"), ok, SETTINGS, VideoOptions.fps(8).withCodec(VideoCodec.VP9)));
        assertTrue(e.getMessage().contains("VP9 cannot go in .mp4"), e.getMessage());
        Map<String, String> nul = Map.of("prompt", "a\0b");
        assertThrows(IllegalArgumentException.class, () -> VideoWriter.write(dir.resolve("clip.mp4"), ok, nul, VideoOptions.fps(8)));
        assertEmpty(dir);
    }

    @Test
    void unwritablePathsGiveAClearErrorAndNoFile() throws IOException {
        RgbFrames ok = gradient(16, 16, 2);
        Path regular = Files.writeString(dir.resolve("notes.txt"), "keep me");
        UncheckedIOException e = assertThrows(UncheckedIOException.class,
                () -> VideoWriter.write(regular.resolve("clip.mp4"), ok, SETTINGS, VideoOptions.fps(8)));
        assertEquals(regular.resolve("clip.mp4") + ": cannot write video: " + regular + ": exists and is not a directory", e.getMessage());
        Path folder = Files.createDirectory(dir.resolve("out.webm"));
        e = assertThrows(UncheckedIOException.class, () -> VideoWriter.write(folder, ok, SETTINGS, VideoOptions.fps(8)));
        assertTrue(e.getMessage().contains("is a directory"), e.getMessage());
        assertEquals("keep me", Files.readString(regular));
        try (Stream<Path> s = Files.list(dir)) {
            assertEquals(List.of("notes.txt", "out.webm"), s.map(p -> p.getFileName().toString()).sorted().toList());
        }
    }

    @Test
    void aFailedEncodeKeepsTheOldFileAndLeavesNoTemporary() throws IOException {
        Path file = dir.resolve("clip.mp4");
        VideoWriter.write(file, gradient(64, 48, 2), SETTINGS, VideoOptions.fps(8));
        byte[] before = Files.readAllBytes(file);
        // Forced H.264 at 8x8 fails after the temporary file exists.
        assertThrows(UncheckedIOException.class,
                () -> VideoWriter.write(file, gradient(8, 8, 2), Map.of(), VideoOptions.fps(8).withCodec(VideoCodec.H264)));
        assertArrayEquals(before, Files.readAllBytes(file));
        assertNoTempFiles();
    }

    @Test
    void readerRejectsWhatIsNotAVideo() throws IOException {
        Path junk = Files.write(dir.resolve("junk.mp4"), new byte[] {1, 2, 3, 4, 5, 6, 7, 8});
        UncheckedIOException e = assertThrows(UncheckedIOException.class, () -> VideoReader.read(junk));
        assertTrue(e.getMessage().startsWith(junk + ": cannot read video"), e.getMessage());
        assertThrows(UncheckedIOException.class, () -> VideoReader.probe(junk));
        assertThrows(IllegalArgumentException.class, () -> VideoReader.probe(dir.resolve("missing.mp4")));
        Path two = dir.resolve("two.webm");
        VideoWriter.write(two, gradient(16, 16, 2), Map.of(), VideoOptions.fps(8));
        e = assertThrows(UncheckedIOException.class, () -> VideoReader.read(two, 1));
        assertTrue(e.getMessage().contains("more than 1 frames"), e.getMessage());
    }

    @Test
    void pngFramesCarryTheSettings() {
        RgbFrames in = gradient(20, 10, 3);
        List<Path> files = VideoFrames.writePngs(dir.resolve("frames"), in, SETTINGS);
        assertEquals(3, files.size());
        assertEquals("frame_00002.png", files.get(2).getFileName().toString());
        Map<String, String> text = PngImages.readText(files.get(2));
        assertSettings(text);
        assertEquals("2/3", text.get("frame"));
    }

    @Test
    void repeatedWritesKeepRssFlat() {
        RgbFrames in = gradient(64, 48, 9);
        Path file = dir.resolve("loop.mp4");
        Path webm = dir.resolve("loop.webm");
        for (int i = 0; i < 5; i++) cycle(in, file, webm); // warm-up: codec tables, allocator pools, JIT
        long before = ProcessMemory.rssMb();
        for (int i = 0; i < 25; i++) cycle(in, file, webm);
        long growthMb = ProcessMemory.rssMb() - before;
        // A leaked codec context, frame or packet per write costs hundreds of KB to MBs (VP9 more); allow noise only.
        assertTrue(growthMb < 15, "RSS grew by " + growthMb + " MB over 25 write+read cycles");
    }

    private static void cycle(RgbFrames in, Path mp4, Path webm) {
        VideoWriter.write(mp4, in, SETTINGS, VideoOptions.fps(8));
        VideoWriter.write(webm, in, SETTINGS, VideoOptions.fps(8));
        assertEquals(9, VideoReader.read(mp4).frames().count());
        assertEquals(9, VideoReader.read(webm).frames().count());
    }

    private static void assertEmpty(Path d) {
        try (Stream<Path> s = Files.list(d)) {
            List<Path> files = s.toList();
            assertTrue(files.isEmpty(), "files left: " + files);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private long size(Path f) {
        try {
            return Files.size(f);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private void assertNoTempFiles() {
        try (Stream<Path> s = Files.list(dir)) {
            List<Path> parts = s.filter(p -> p.getFileName().toString().endsWith(".part")).toList();
            assertTrue(parts.isEmpty(), "temporary files left: " + parts);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
