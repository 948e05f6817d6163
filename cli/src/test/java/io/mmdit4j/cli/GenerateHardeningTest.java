package io.mmdit4j.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.mmdit4j.BrokenModels;
import io.mmdit4j.image.A1111Infotext;
import io.mmdit4j.image.PngImages;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The hardening issue's items 3, 4, 5 and 8 as a user meets them on the command line: each case is one of the issue's
 * reproductions, now one clear error (exit 2; 1 for a run that went non-finite) before any work, or a warning, or output
 * that overwrites nothing.
 */
class GenerateHardeningTest {
    private static final String MODEL = BrokenModels.fluxTinyDev().toString();
    private static final Map<String, String> SMALL = Map.of("--model", MODEL, "--width", "32", "--height", "32", "--steps", "1",
            "--max-sequence-length", "16");

    /** {@code generate} with {@code args}, and a small run's settings for the options they leave out. */
    private static CheckGoldenCommandTest.Run generate(String... args) {
        List<String> all = new java.util.ArrayList<>(List.of("generate"));
        all.addAll(List.of(args));
        SMALL.forEach((k, v) -> {
            if (!all.contains(k)) all.addAll(List.of(k, v));
        });
        return CheckGoldenCommandTest.run(all.toArray(String[]::new));
    }

    private static List<String> files(Path dir) throws IOException {
        if (!Files.exists(dir)) return List.of();
        try (Stream<Path> s = Files.walk(dir)) {
            return s.filter(p -> !p.equals(dir)).map(p -> dir.relativize(p).toString()).sorted().toList();
        }
    }

    private static void refused(CheckGoldenCommandTest.Run r, String... expected) {
        assertEquals(2, r.exit(), r.out() + r.err());
        for (String e : expected) assertTrue(r.err().contains(e), "expected '" + e + "' in: " + r.err());
        assertFalse(r.err().contains("loaded"), "refused before the model loads: " + r.err());
        assertEquals(1, r.err().lines().filter(l -> l.startsWith("mmdit: error:")).count(), r.err());
    }

    // ------------------------------------------------------------------------------------------------ item 3: limits

    @Test
    void impossibleAndOversizedRequestsAreRefusedBeforeWork(@TempDir Path tmp) throws IOException {
        Path out = tmp.resolve("out");
        refused(generate("--prompt", "x", "--steps", "1000000000", "--out", out.toString()), "steps must be in 1..10000, got 1000000000");
        refused(generate("--prompt", "x", "--guidance", "1e308", "--out", out.toString()), "embedded guidance scale must be in 0..100, got 1.0E308");
        refused(generate("--prompt", "x", "--width", "100000", "--height", "100000", "--out", out.toString()), "16..16384", "100000");
        refused(generate("--prompt", "x", "--batch", "5000", "--out", out.toString()), "at most 4096 images");
        long t0 = System.nanoTime();
        refused(generate("--prompt", "x", "--width", "16384", "--height", "16384", "--out", out.toString()), "this generation needs about",
                "are available", "--ignore-memory-check");
        assertTrue(System.nanoTime() - t0 < 20e9, "refused from the estimate, not after minutes of work");
        assertEquals(List.of(), files(out));
    }

    @Test
    void theMemoryCheckCanBeOverriddenAndLargeBatchesRunInChunks(@TempDir Path tmp) throws IOException {
        System.setProperty("mmdit.memory.available", "1M");
        try {
            refused(generate("--prompt", "x", "--out", tmp.resolve("a.png").toString()), "this generation needs about", "1 MB are available");
            CheckGoldenCommandTest.Run r = generate("--prompt", "x", "--ignore-memory-check", "--out", tmp.resolve("a.png").toString());
            assertEquals(0, r.exit(), r.err());
        } finally {
            System.clearProperty("mmdit.memory.available");
        }
        CheckGoldenCommandTest.Run r = generate("--prompt", "x", "--batch", "20", "--seed", "100", "--out", tmp.resolve("many").toString());
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.err().contains("20 images in 3 chunks of up to 8"), r.err());
        assertTrue(r.err().contains("generate 3/3 it") && r.err().contains("chunk 3/3"), r.err()); // one progress line per step over all chunks
        List<String> names = files(tmp.resolve("many"));
        assertEquals(20, names.size());
        assertEquals("000-seed100.png", names.get(0));
        assertEquals("019-seed119.png", names.get(19));
        assertEquals("119", PngImages.readText(tmp.resolve("many/019-seed119.png")).get("seed"));
    }

    @Test
    void inspectDryRunsHaveTheSameLimits() {
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("inspect", "--config", "flux1-dev", "--size", "100000x100000");
        assertEquals(2, r.exit(), r.err());
        assertTrue(r.err().contains("--size 100000x100000: width and height must be multiples of 16 in 16..16384"), r.err());
        r = CheckGoldenCommandTest.run("inspect", "--config", "flux1-dev", "--size", "1024x1024");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("memory to generate this batch on the CPU in bfloat16 (estimate)"), r.out());
        System.setProperty("mmdit.memory.available", "1M");
        try {
            r = CheckGoldenCommandTest.run("inspect", "--config", "flux1-dev", "--size", "1024x1024");
            assertEquals(2, r.exit(), r.err());
            assertTrue(r.err().contains("RoPE tables on the CPU") && r.err().contains("--ignore-memory-check"), r.err());
            assertEquals(0, CheckGoldenCommandTest.run("inspect", "--config", "flux1-dev", "--size", "1024x1024", "--ignore-memory-check").exit());
        } finally {
            System.clearProperty("mmdit.memory.available");
        }
    }

    // ------------------------------------------------------------------------------------------------ item 4: no silent wrong results

    @Test
    void nanWeightsAndOverflowingGuidanceFailInsteadOfWritingBlackImages(@TempDir Path tmp) throws IOException {
        Path out = tmp.resolve("out.png");
        refused(generate("--prompt", "x", "--mg-preset", "aesthetics", "--mg-w", "1e308", "--out", out.toString()),
                "--mg-w 1.0E308", "w must be in -100..100");
        refused(generate("--prompt", "x", "--mg-preset", "aesthetics", "--mg-layers", "1-:1e300", "--out", out.toString()), "must stay within 1000");

        Path broken = BrokenModels.nanTransformer(BrokenModels.fluxTinyDev(), tmp.resolve("nan-model"));
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("generate", "--model", broken.toString(), "--prompt", "x", "--width", "32",
                "--height", "32", "--steps", "2", "--max-sequence-length", "16", "--out", out.toString());
        assertEquals(1, r.exit(), r.err());
        assertTrue(r.err().contains("mmdit: error: the latents became NaN or infinite at denoising step 1 of 2") && r.err().contains("nothing was written"),
                r.err());
        assertFalse(Files.exists(out), "no black image");
    }

    @Test
    void aStepWindowPastTheLastStepIsAWarning(@TempDir Path tmp) {
        CheckGoldenCommandTest.Run r = generate("--prompt", "x", "--steps", "4", "--mg-preset", "aesthetics", "--mg-layers", "1-", "--mg-steps", "99",
                "--out", tmp.resolve("a.png").toString());
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.err().contains("mmdit: warning: guidance 'aesthetics': step window 99 starts past the last of 4 steps (0..3) and guides no step"),
                r.err());
    }

    @Test
    void seedsArePyTorchsUnsigned64BitAndImageISeedIsSeedPlusIModulo2To64(@TempDir Path tmp) throws IOException {
        CheckGoldenCommandTest.Run r = generate("--prompt", "x", "--seed", "9223372036854775807", "--batch", "2", "--out", tmp.resolve("a").toString());
        assertEquals(0, r.exit(), r.err());
        assertEquals(List.of("000-seed9223372036854775807.png", "001-seed9223372036854775808.png"), files(tmp.resolve("a")));
        Map<String, String> second = PngImages.readText(tmp.resolve("a/001-seed9223372036854775808.png"));
        assertEquals("9223372036854775808", second.get("seed"));
        assertTrue(second.get("mmdit4j").contains("\"seed\":9223372036854775808"), second.get("mmdit4j"));
        r = generate("--prompt", "x", "--seed", "18446744073709551615", "--batch", "2", "--out", tmp.resolve("b").toString());
        assertEquals(0, r.exit(), r.err());
        assertEquals(List.of("000-seed18446744073709551615.png", "001-seed0.png"), files(tmp.resolve("b")));
        refused(generate("--prompt", "x", "--seed", "18446744073709551616", "--out", tmp.resolve("c").toString()), "2^64-1");
    }

    @Test
    void theOutputFormatComesFromTheExtension(@TempDir Path tmp) throws IOException {
        refused(generate("--prompt", "x", "--out", tmp.resolve("x.jpg").toString()), "--out", "unknown image extension, expected .png");
        assertEquals(List.of(), files(tmp), "x.jpg is not created as a folder");
    }

    // ------------------------------------------------------------------------------------------------ item 5: replayed settings

    @Test
    void handEditedRecordsAreReadStrictlyWithTheCommandLinesRanges(@TempDir Path tmp) throws IOException {
        CheckGoldenCommandTest.Run r = generate("--prompt", "a fox", "--mg-preset", "aesthetics", "--mg-layers", "1-", "--out", tmp.resolve("a.png").toString());
        assertEquals(0, r.exit(), r.err());
        String record = PngImages.readText(tmp.resolve("a.png")).get("mmdit4j");
        Map<String, String> edits = new LinkedHashMap<>();
        edits.put("\"seed\":0", "\"seed\":\"hello\"");
        edits.put("\"width\":32", "\"width\":256.9");
        edits.put("\"w\":3.0", "\"w\":\"lots\"");
        edits.put("\"steps\":1,", "\"steps\":1e308,");
        edits.put("\"guidance_scale\":3.5", "\"guidance_scale\":-1e308");
        edits.put("\"dtype\"", "\"loras\":\"x\",\"dtype\"");
        Map<String, String> expected = Map.of("\"seed\":0", "'seed'", "\"width\":32", "'width' must be a whole number in 16..16384",
                "\"w\":3.0", "'w' must be a finite number", "\"steps\":1,", "'steps' must be a whole number in 1..10000",
                "\"guidance_scale\":3.5", "embedded guidance scale must be in 0..100", "\"dtype\"", "'loras' must be a list");
        BufferedImage img = new BufferedImage(32, 32, BufferedImage.TYPE_INT_RGB);
        for (Map.Entry<String, String> e : edits.entrySet()) {
            assertTrue(record.contains(e.getKey()), e.getKey() + " in " + record);
            Path edited = tmp.resolve("edited.png");
            Files.deleteIfExists(edited);
            PngImages.write(edited, img, Map.of("mmdit4j", record.replace(e.getKey(), e.getValue())));
            refused(CheckGoldenCommandTest.run("generate", "--from", edited.toString(), "--out", tmp.resolve("again.png").toString()),
                    edited.toString(), expected.get(e.getKey()));
        }
        assertFalse(Files.exists(tmp.resolve("again.png")));
        // a hand-edited weight out of range is the command line's refusal too
        Path edited = tmp.resolve("huge-w.png");
        PngImages.write(edited, img, Map.of("mmdit4j", record.replace("\"w\":3.0", "\"w\":1e308")));
        refused(CheckGoldenCommandTest.run("generate", "--from", edited.toString(), "--out", tmp.resolve("again.png").toString()),
                "w must be in -100..100");
        assertTrue(new ObjectMapper().readTree(record).isObject());
    }

    // ------------------------------------------------------------------------------------------------ item 8: outputs

    @Test
    void outputsAreNeverOverwrittenWithoutOverwriteAndFoldersContinueTheirNumbering(@TempDir Path tmp) throws IOException {
        Path file = tmp.resolve("fox.png");
        assertEquals(0, generate("--prompt", "a fox", "--out", file.toString()).exit());
        byte[] first = Files.readAllBytes(file);
        refused(generate("--prompt", "a wolf", "--out", file.toString()), "the file exists; give --overwrite");
        assertArrayEquals(first, Files.readAllBytes(file), "untouched");
        CheckGoldenCommandTest.Run r = generate("--prompt", "a wolf", "--overwrite", "--out", file.toString());
        assertEquals(0, r.exit(), r.err());
        assertEquals("a wolf", A1111Infotext.parse(PngImages.readText(file).get("parameters")).get("Prompt"));

        Path dir = tmp.resolve("outputs");
        Files.createDirectories(dir);
        Files.writeString(dir.resolve(".000-seed0.png4242.part"), "left by a killed run");
        assertEquals(0, generate("--prompt", "a fox", "--out", dir.toString()).exit());
        assertEquals(0, generate("--prompt", "a fox", "--batch", "2", "--out", dir.toString()).exit());
        assertEquals(List.of("000-seed0.png", "001-seed0.png", "002-seed1.png"), files(dir), "numbering continues; the .part file is gone");
        assertEquals(0, generate("--prompt", "a wolf", "--overwrite", "--out", dir.toString()).exit());
        assertEquals("a wolf", A1111Infotext.parse(PngImages.readText(dir.resolve("000-seed0.png")).get("parameters")).get("Prompt"), "--overwrite numbers from 000 again");
    }
}
