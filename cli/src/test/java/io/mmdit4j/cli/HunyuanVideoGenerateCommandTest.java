package io.mmdit4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.mmdit4j.hunyuan.TinyHunyuanVideoFolder;
import io.mmdit4j.image.A1111Infotext;
import io.mmdit4j.image.PngImages;
import io.mmdit4j.video.VideoReader;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code mmdit generate} on a tiny HunyuanVideo folder: an MP4 end to end, its metadata, --from, --png-frames and clear errors. */
class HunyuanVideoGenerateCommandTest {
    @TempDir
    static Path shared;
    static String model;

    @BeforeAll
    static void folder() throws IOException {
        model = TinyHunyuanVideoFolder.write(shared.resolve("hunyuan-tiny")).toString();
    }

    private static CheckGoldenCommandTest.Run generate(String... args) {
        String[] all = new String[args.length + 3];
        all[0] = "generate";
        all[1] = "--model";
        all[2] = model;
        System.arraycopy(args, 0, all, 3, args.length);
        return CheckGoldenCommandTest.run(all);
    }

    @Test
    void writesAnMp4WithItsSettingsAndFromRepeatsIt(@TempDir Path tmp) throws IOException {
        Path mp4 = tmp.resolve("cat.mp4");
        Path pngs = tmp.resolve("frames");
        CheckGoldenCommandTest.Run r = generate("--prompt", "a cat walks", "--seed", "4", "--width", "32", "--height", "48", "--frames", "5",
                "--steps", "2", "--fps", "8", "--max-sequence-length", "8", "--mg-preset", "video-aesthetics", "--mg-layers", "1-",
                "--png-frames", pngs.toString(), "--out", mp4.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        assertTrue(r.out().contains(mp4.toString()), r.out());

        VideoReader.Decoded video = VideoReader.read(mp4);
        assertEquals(5, video.frames().count());
        assertEquals(32, video.frames().width());
        assertEquals(48, video.frames().height());
        assertEquals(8.0, video.info().fps(), 1e-6);
        assertEquals("a cat walks", A1111Infotext.parse(video.info().metadata().get("parameters")).get("Prompt"));
        assertEquals("4", video.info().metadata().get("seed"));
        JsonNode m = new ObjectMapper().readTree(video.info().metadata().get("mmdit4j"));
        assertEquals("hunyuan-video", m.get("family").asText());
        assertEquals(5, m.get("frames").asInt());
        assertEquals(8, m.get("fps").asInt());
        assertEquals(32, m.get("width").asInt());
        assertEquals(48, m.get("height").asInt());
        assertEquals(2, m.get("steps").asInt());
        assertEquals(6.0, m.get("guidance_scale").asDouble());
        JsonNode g = m.get("modulation_guidance").get(0);
        assertEquals("video-aesthetics", g.get("label").asText());
        assertEquals("Low-res, bad quality, blurred", g.get("neg").asText());
        assertEquals(3.5, g.get("w").asDouble());
        assertEquals("1-", g.get("layers").asText());

        try (Stream<Path> s = Files.list(pngs)) {
            List<Path> frames = s.sorted().toList();
            assertEquals(5, frames.size());
            assertEquals("a cat walks", A1111Infotext.parse(PngImages.readText(frames.get(0)).get("parameters")).get("Prompt"));
        }

        CheckGoldenCommandTest.Run inspect = CheckGoldenCommandTest.run("inspect", mp4.toString());
        assertEquals(0, inspect.exit(), inspect.err());
        assertTrue(inspect.out().contains("a cat walks") && inspect.out().contains("video-aesthetics"), inspect.out());

        Path again = tmp.resolve("again.mp4");
        r = CheckGoldenCommandTest.run("generate", "--from", mp4.toString(), "--out", again.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        VideoReader.Decoded repeat = VideoReader.read(again);
        assertEquals(5, repeat.frames().count());
        for (int i = 0; i < 5; i++) assertArrayEquals(video.frames().frame(i), repeat.frames().frame(i), "--from repeats frame " + i);
    }

    @Test
    void webmIsBitReproducibleAndGifCarriesTheSettings(@TempDir Path tmp) throws IOException {
        String[] args = {"--prompt", "a cat walks", "--seed", "4", "--width", "32", "--height", "32", "--frames", "5", "--steps", "1",
                "--max-sequence-length", "8"};
        Path a = tmp.resolve("a.webm"), b = tmp.resolve("b.webm"), gif = tmp.resolve("c.gif");
        for (Path out : List.of(a, b, gif)) {
            String[] all = java.util.Arrays.copyOf(args, args.length + 2);
            all[args.length] = "--out";
            all[args.length + 1] = out.toString();
            assertEquals(0, generate(all).exit());
        }
        assertArrayEquals(Files.readAllBytes(a), Files.readAllBytes(b), "the muxer's and encoder's bitexact flags: one run, one file");
        CheckGoldenCommandTest.Run inspect = CheckGoldenCommandTest.run("inspect", a.toString());
        assertTrue(inspect.out().contains(", 5 frames,"), "WebM declares no frame count; inspect counts them: " + inspect.out());

        assertEquals("a cat walks", A1111Infotext.parse(VideoReader.probe(gif).metadata().get("parameters")).get("Prompt"), "GIF comments");
        Path again = tmp.resolve("again.gif");
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("generate", "--from", gif.toString(), "--out", again.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        assertArrayEquals(Files.readAllBytes(gif), Files.readAllBytes(again), "--from repeats a GIF from its comments, byte for byte");
    }

    @Test
    void aFolderTakesOneFilePerVideo(@TempDir Path tmp) {
        CheckGoldenCommandTest.Run r = generate("--prompt", "a dog", "--seed", "1", "--batch", "2", "--width", "32", "--height", "32",
                "--frames", "1", "--steps", "1", "--max-sequence-length", "8", "--out", tmp.resolve("out").toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        assertTrue(Files.isRegularFile(tmp.resolve("out/000-seed1.mp4")) && Files.isRegularFile(tmp.resolve("out/001-seed2.mp4")), r.out());
        assertEquals(1, VideoReader.read(tmp.resolve("out/001-seed2.mp4")).frames().count());
    }

    @Test
    void badSettingsFailBeforeAnyModelLoadsAndLeaveNoFiles(@TempDir Path tmp) throws IOException {
        Path out = tmp.resolve("sub");
        String[][] cases = {
                {"--frames", "6", "4k+1"},
                {"--frames", "0", "frames must be in 1.."},
                {"--width", "40", "multiples of 16"},
                {"--height", "33", "multiples of 16"},
                {"--steps", "0", "steps"},
        };
        for (String[] c : cases) {
            java.util.Map<String, String> opts = new java.util.LinkedHashMap<>(java.util.Map.of("--prompt", "x", "--width", "32", "--height", "32",
                    "--frames", "5", "--steps", "1", "--out", out.resolve("v.mp4").toString()));
            opts.put(c[0], c[1]);
            CheckGoldenCommandTest.Run r = generate(opts.entrySet().stream().flatMap(e -> Stream.of(e.getKey(), e.getValue())).toArray(String[]::new));
            assertEquals(2, r.exit(), String.join(" ", c) + ": " + r.err());
            assertTrue(r.err().contains(c[2]), r.err());
            assertTrue(!r.err().contains("loaded"), "nothing loads: " + r.err());
        }
        CheckGoldenCommandTest.Run r = generate("--prompt", "x", "--width", "32", "--height", "32", "--frames", "5", "--out", out.resolve("v.avi").toString());
        assertEquals(2, r.exit(), r.err());
        assertTrue(r.err().contains("unknown video extension"), r.err());

        r = generate("--prompt", "x", "--batch", "2", "--width", "32", "--height", "32", "--frames", "5", "--out", out.resolve("v.mp4").toString());
        assertEquals(2, r.exit(), r.err());
        assertTrue(r.err().contains("give a folder"), r.err());

        Path file = tmp.resolve("plain.txt");
        Files.writeString(file, "not a folder");
        r = generate("--prompt", "x", "--width", "32", "--height", "32", "--frames", "5", "--out", file.resolve("v.mp4").toString());
        assertEquals(2, r.exit(), r.err());
        assertTrue(r.err().contains("--out"), r.err());
        assertTrue(!r.err().contains("loaded"), r.err());

        r = generate("--prompt", "x", "--width", "32", "--height", "32", "--frames", "5", "--cfg", "3", "--out", out.resolve("v.mp4").toString());
        assertEquals(2, r.exit(), r.err());
        assertTrue(r.err().contains("--cfg"), r.err());

        r = generate("--prompt", "x", "--width", "32", "--height", "32", "--frames", "5", "--mg-preset", "video-aesthetics", "--mg-layers", "2-9",
                "--out", out.resolve("v.mp4").toString()); // a closed range past the 4-block model's end
        assertEquals(2, r.exit(), r.err());
        assertTrue(r.err().contains("layer 9 is outside this model's 4 blocks") && !r.err().contains("loaded"), r.err());

        try (Stream<Path> s = Files.walk(tmp)) {
            assertEquals(List.of(file), s.filter(Files::isRegularFile).toList(), "no partial files");
        }

        // Video options on an image model are refused as well.
        r = CheckGoldenCommandTest.run("generate", "--model", io.mmdit4j.GoldenData.root().resolve("flux_pipeline/models/flux-tiny-dev").toString(),
                "--prompt", "x", "--frames", "5", "--out", tmp.toString());
        assertEquals(2, r.exit(), r.err());
        assertTrue(r.err().contains("--frames"), r.err());
    }

    @Test
    void theGeneratedDemoModelTakesItsDescriptorsDefaultsAndRecommendedGuidance(@TempDir Path tmp) throws IOException {
        Path gif = tmp.resolve("demo.gif");
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("generate", "--model", "hunyuan-video-tiny-demo", "--prompt", "a cat",
                "--width", "32", "--height", "32", "--frames", "1", "--steps", "1", "--mg-preset", "video-aesthetics", "--out", gif.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        assertTrue(r.err().contains("videos look like noise"), r.err());
        VideoReader.Decoded video = VideoReader.read(gif);
        assertEquals(1, video.frames().count());
        assertEquals(8.0, video.info().fps(), 0.5, "the descriptor's fps");

        Path mp4 = tmp.resolve("demo.mp4");
        r = CheckGoldenCommandTest.run("generate", "--model", "hunyuan-video-tiny-demo", "--prompt", "a cat",
                "--width", "32", "--height", "32", "--frames", "1", "--steps", "1", "--mg-preset", "video-aesthetics", "--out", mp4.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        JsonNode m = new ObjectMapper().readTree(VideoReader.probe(mp4).metadata().get("mmdit4j"));
        assertEquals("1-", m.get("modulation_guidance").get(0).get("layers").asText(), "the descriptor's recommended layers");
        assertEquals(6.0, m.get("guidance_scale").asDouble());
        assertEquals(16, m.get("max_sequence_length").asInt());
    }

    @Test
    void theFamilyComesFromTheModelIndexOrTheDescriptor() {
        assertEquals("hunyuan-video", io.mmdit4j.models.Families.detect(null, Path.of(model)).name());
        io.mmdit4j.models.ModelRegistry reg = new io.mmdit4j.models.ModelRegistry(Path.of("."), null);
        io.mmdit4j.models.ModelDescriptor d = reg.descriptor("hunyuan-video");
        assertEquals("hunyuan-video", io.mmdit4j.models.Families.detect(d, Path.of("nowhere")).name());
        assertEquals(61, d.defaults().get("frames").asInt());
        assertEquals(15, d.defaults().get("fps").asInt());
        assertEquals("hunyuanvideo-community/HunyuanVideo", d.source().get("hf_repo").asText());
    }
}
