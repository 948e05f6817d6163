package io.mmdit4j.cli;

import io.mmdit4j.GoldenData;
import io.mmdit4j.image.A1111Infotext;
import io.mmdit4j.image.PngImages;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code mmdit generate}: PNGs with their settings, reproduction with --from, inspect, argument errors. */
class GenerateCommandTest {
    private static final String MODEL = GoldenData.root().resolve("flux_pipeline/models/flux-tiny-dev").toString();

    @Test
    void writesPngsWithSettingsAndReproducesThemFromTheFile(@TempDir Path tmp) throws IOException {
        Path first = tmp.resolve("fox.png");
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("generate", "--model", MODEL, "--prompt", "a red fox, ünïcödé", "--seed", "5",
                "--width", "64", "--height", "48", "--steps", "2", "--max-sequence-length", "32", "--mg-preset", "aesthetics",
                "--mg-layers", "1-", "--out", first.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        Map<String, String> text = PngImages.readText(first);
        assertEquals("a red fox, ünïcödé", A1111Infotext.parse(text.get("parameters")).get("Prompt"));
        A1111Infotext.requireComfyCompatible(text);
        assertEquals("5", text.get("seed"));
        assertTrue(text.get("mmdit4j").contains("\"layers\":\"1-\"") && text.get("mmdit4j").contains("\"steps\":2"), text.get("mmdit4j"));

        Path again = tmp.resolve("again.png");
        r = CheckGoldenCommandTest.run("generate", "--from", first.toString(), "--out", again.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        assertArrayEquals(Files.readAllBytes(first), Files.readAllBytes(again), "--from reproduces the image bit for bit");

        r = CheckGoldenCommandTest.run("inspect", first.toString());
        assertEquals(0, r.exit());
        assertTrue(r.out().contains("prompt: a red fox") && r.out().contains("seed: 5"), r.out());
    }

    @Test
    void theBundledDemoModelWorksWithNoModelOptionAndSaysItIsTheDemo(@TempDir Path tmp) throws IOException {
        Path wolf = tmp.resolve("wolf.png");
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("generate", "--model", "flux-tiny-demo", "--prompt", "a wolf on a plain background",
                "--width", "64", "--height", "64", "--out", wolf.toString());
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.err().contains("bundled demo model"), r.err());
        assertEquals("flux-tiny-demo", new com.fasterxml.jackson.databind.ObjectMapper().readTree(PngImages.readText(wolf).get("mmdit4j"))
                .get("model").asText());
        Path again = tmp.resolve("again.png");
        assertEquals(0, CheckGoldenCommandTest.run("generate", "--model", "flux-tiny-demo", "--prompt", "a wolf on a plain background", "--width", "64", "--height", "64",
                "--out", again.toString()).exit());
        assertArrayEquals(Files.readAllBytes(wolf), Files.readAllBytes(again), "two runs with the same seed give identical files");
    }

    @Test
    void severalImagesGoToAFolderAndBadArgumentsAreClearErrors(@TempDir Path tmp) {
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("generate", "--model", MODEL, "--prompt", "a", "--prompt", "b",
                "--width", "32", "--height", "32", "--steps", "1", "--max-sequence-length", "16", "--out", tmp.resolve("out").toString());
        assertEquals(0, r.exit(), r.err());
        assertTrue(Files.isRegularFile(tmp.resolve("out/000-seed0.png")) && Files.isRegularFile(tmp.resolve("out/001-seed1.png")));

        r = CheckGoldenCommandTest.run("generate", "--model", MODEL, "--prompt", "a", "--prompt", "b", "--width", "32", "--height", "32",
                "--steps", "1", "--max-sequence-length", "16", "--out", tmp.resolve("one.png").toString());
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("give a folder"), r.err());
        assertTrue(!Files.exists(tmp.resolve("one.png")), "no half-written output");

        r = CheckGoldenCommandTest.run("generate", "--model", MODEL, "--prompt", "a", "--width", "30", "--out", tmp.toString());
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("multiples of 16"), r.err());
        r = CheckGoldenCommandTest.run("generate", "--model", "flux-tiny-demo", "--prompts-file", tmp.resolve("missing.txt").toString(), "--out", tmp.toString());
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("missing.txt: no such file"), r.err());
        r = CheckGoldenCommandTest.run("generate", "--model", tmp.resolve("nowhere").toString(), "--prompt", "a", "--out", tmp.toString());
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("no such file or folder"), r.err());
        r = CheckGoldenCommandTest.run("generate", "--model", MODEL, "--prompt", "a", "--steps", "0", "--out", tmp.toString());
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("steps must be in 1.."), r.err());
        r = CheckGoldenCommandTest.run("generate", "--model", MODEL, "--prompt", "a", "--mg-preset", "sharpness", "--out", tmp.toString());
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("guidance preset 'sharpness'"), r.err());
    }

    @Test
    void presetsAndCustomDirectionsWorkOnTheDemoModelsAndSeveralSeedsAndAPromptsFileAreTaken(@TempDir Path tmp) throws IOException {
        Path prompts = tmp.resolve("prompts.txt");
        Files.writeString(prompts, "# a comment line\na red fox\n\n  # another comment\na lighthouse\n");
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("generate", "--model", "flux-tiny-demo", "--prompts-file", prompts.toString(), "--seed", "3", "--seed", "9",
                "--mg-preset", "aesthetics", "--width", "32", "--height", "32", "--steps", "1", "--out", tmp.resolve("out").toString());
        assertEquals(0, r.exit(), r.err());
        assertFalse(r.err().contains("warning"), "the demo's recommended layers guide its blocks: " + r.err());
        Map<String, String> fox = PngImages.readText(tmp.resolve("out/000-seed3.png"));
        assertEquals("a red fox", A1111Infotext.parse(fox.get("parameters")).get("Prompt"));
        assertEquals("a lighthouse", A1111Infotext.parse(PngImages.readText(tmp.resolve("out/001-seed9.png")).get("parameters")).get("Prompt"), "one seed per image");
        assertTrue(fox.get("mmdit4j").contains("\"w\":3.0") && fox.get("mmdit4j").contains("\"layers\":\"1-\""), fox.get("mmdit4j"));

        r = CheckGoldenCommandTest.run("generate", "--model", "flux-tiny-demo", "--prompt", "a wolf", "--mg-pos", "vivid colors", "--mg-neg", "grey", "--width", "32",
                "--height", "32", "--steps", "1", "--out", tmp.resolve("custom.png").toString());
        assertEquals(0, r.exit(), r.err());
        assertTrue(PngImages.readText(tmp.resolve("custom.png")).get("mmdit4j").contains("\"label\":\"custom0\""));

        r = CheckGoldenCommandTest.run("generate", "--model", "flux-tiny-demo", "--prompt", "a wolf", "--mg-preset", "aesthetics", "--mg-layers", "7-", "--width", "32",
                "--height", "32", "--steps", "1", "--out", tmp.resolve("open.png").toString());
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.err().contains("warning") && r.err().contains("7- starts past the last block of this model's 5 blocks"), r.err());

        r = CheckGoldenCommandTest.run("generate", "--model", "hunyuan-video-tiny-demo", "--prompt", "a cat", "--mg-preset", "video-aesthetics",
                "--width", "32", "--height", "32", "--frames", "5", "--steps", "1", "--out", tmp.resolve("cat.mp4").toString());
        assertEquals(0, r.exit(), r.err());

        r = CheckGoldenCommandTest.run("generate", "--model", "flux-tiny-demo", "--prompt", "a wolf", "--seed", "-3", "--out", tmp.toString());
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("2^64-1"), r.err());
        r = CheckGoldenCommandTest.run("generate", "--model", "flux-tiny-demo", "--prompt", "a", "--prompt", "b", "--seed", "1", "--seed", "2", "--seed", "3", "--out", tmp.toString());
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("3 seeds for 2 images"), r.err());
        r = CheckGoldenCommandTest.run("generate", "--model", "no-such-model", "--prompt", "a", "--out", tmp.toString());
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("no model descriptor of that name"), r.err());
    }
}
