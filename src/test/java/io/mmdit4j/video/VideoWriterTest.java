package io.mmdit4j.video;

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
