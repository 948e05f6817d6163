package io.mmdit4j.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code mmdit eval-shapes} on the random tiny demo: the tables and the plot are written (the accuracies of a random model mean nothing). */
class EvalShapesCommandTest {
    @TempDir
    Path tmp;

    @Test
    void writesPerPictureAndSummaryTablesForEachWeightAndSchedule() throws IOException {
        Path out = tmp.resolve("eval");
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("eval-shapes", "--model", "flux-tiny-demo", "--prompts", "2", "--seeds", "2",
                "--steps", "2", "--mg-pos", "large shapes", "--mg-neg", "small shapes", "--mg-w", "0,2", "--mg-layers", "0-1;2-4", "--out", out.toString());
        assertEquals(0, r.exit(), r.err());
        List<String> rows = Files.readAllLines(out.resolve("eval.csv"));
        assertEquals(1 + 2 * 2 * 2 * 2, rows.size(), String.join("\n", rows));
        List<String> summary = Files.readAllLines(out.resolve("summary.csv"));
        assertEquals(1 + 4, summary.size());
        assertTrue(summary.get(1).startsWith("0.0,0-1,4,"), summary.get(1));
        assertTrue(Files.size(out.resolve("summary.png")) > 1000);
        assertTrue(r.err().contains("count+colour+shape"), r.err());
    }

    @Test
    void refusesHalfADirection() {
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("eval-shapes", "--model", "flux-tiny-demo", "--mg-pos", "large shapes",
                "--out", tmp.resolve("x").toString());
        assertNotEquals(0, r.exit());
        assertTrue(r.err().contains("--mg-neg"), r.err());
    }

    /** {@code --mg-preset}: the descriptor's direction, its prompts and layers, measures exactly as the same direction spelled out. */
    @Test
    void aPresetIsTheDescriptorsDirection() throws IOException {
        Path byPreset = tmp.resolve("preset"), spelled = tmp.resolve("spelled");
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("eval-shapes", "--model", "flux-shapes-demo", "--prompts", "3", "--mg-preset", "count",
                "--mg-w", "0,3", "--measure", "count", "--out", byPreset.toString());
        assertEquals(0, r.exit(), r.err());
        r = CheckGoldenCommandTest.run("eval-shapes", "--model", "flux-shapes-demo", "--prompts", "3", "--mg-pos", "four shapes",
                "--mg-neg", "one shape", "--mg-layers", "0-1", "--mg-w", "0,3", "--measure", "count", "--out", spelled.toString());
        assertEquals(0, r.exit(), r.err());
        List<String> a = Files.readAllLines(byPreset.resolve("eval.csv")), b = Files.readAllLines(spelled.resolve("eval.csv"));
        assertEquals(7, a.size());
        for (int i = 0; i < a.size(); i++) assertEquals(b.get(i).replace(",0-1,", ",model,"), a.get(i)); // the layers column: the preset's
        List<String> rows = a.subList(4, 7);
        assertNotEquals(a.subList(1, 4), rows.stream().map(l -> l.replace(",3.0,", ",0.0,")).toList(), "w 3 changes the pictures");
        r = CheckGoldenCommandTest.run("eval-shapes", "--model", "flux-shapes-demo", "--mg-preset", "count", "--mg-pos", "a", "--mg-neg", "b",
                "--out", tmp.resolve("both").toString());
        assertNotEquals(0, r.exit());
        assertTrue(r.err().contains("not with --mg-pos/--mg-neg"), r.err());
    }

    /**
     * {@code --reconstruct}: the bundled shapes model's VAE alone (render, encode, decode, read back). Its pictures keep
     * count and colour almost always (200 scenes: 199 and 196), so a broken round trip (noise, swapped channels) fails;
     * options that would be ignored are refused.
     */
    @Test
    void reconstructMeasuresTheVaeAlone() throws IOException {
        Path out = tmp.resolve("vae");
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("eval-shapes", "--model", "flux-shapes-demo", "--reconstruct", "--prompts", "20",
                "--save-images", "--out", out.toString());
        assertEquals(0, r.exit(), r.err());
        try (var images = Files.list(out.resolve("images"))) {
            assertEquals(20, images.filter(p -> p.getFileName().toString().matches("w0\\.0_vae-reconstruction_\\d{3}_seed\\d+\\.png")).count());
        }
        assertTrue(r.err().contains("VAE reconstructions"), r.err());
        List<String> summary = Files.readAllLines(out.resolve("summary.csv"));
        assertEquals(2, summary.size(), String.join("\n", summary));
        String[] f = summary.get(1).split(",");
        assertEquals("vae-reconstruction", f[1]);
        assertEquals(20, Integer.parseInt(f[2]));
        assertTrue(Double.parseDouble(f[3]) >= 0.9, "count kept: " + summary.get(1));
        assertTrue(Double.parseDouble(f[4]) >= 0.9, "colour kept: " + summary.get(1));
        r = CheckGoldenCommandTest.run("eval-shapes", "--model", "flux-shapes-demo", "--reconstruct", "--true-cfg", "3", "--out", tmp.resolve("no").toString());
        assertEquals(2, r.exit(), r.err());
        assertTrue(r.err().contains("--reconstruct measures the VAE alone"), r.err());
        r = CheckGoldenCommandTest.run("eval-shapes", "--model", "cosmos-tiny-demo", "--reconstruct", "--prompts", "1", "--out", tmp.resolve("c").toString());
        assertEquals(2, r.exit(), r.err());
        assertTrue(r.err().contains("is a cosmos model"), r.err());
        r = CheckGoldenCommandTest.run("eval-shapes", "--model", "flux-shapes-demo", "--reconstruct", "--layout", "free", "--prompts", "2", "--out", tmp.resolve("f").toString());
        assertEquals(0, r.exit(), r.err());
        r = CheckGoldenCommandTest.run("eval-shapes", "--model", "flux-shapes-demo", "--reconstruct", "--layout", "grid", "--out", tmp.resolve("g").toString());
        assertEquals(2, r.exit(), r.err());
        assertTrue(r.err().contains("unknown layout 'grid'"), r.err());
        r = CheckGoldenCommandTest.run("eval-shapes", "--model", "flux-shapes-demo", "--layout", "free", "--out", tmp.resolve("l").toString());
        assertEquals(2, r.exit(), r.err());
        assertTrue(r.err().contains("--layout places the scenes of --reconstruct"), r.err());
    }

    /** The sampler settings a trained shapes model needs reach every generation: the T5 length it was trained with and true CFG. */
    @Test
    void samplerOptionsReachTheGenerations() {
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("eval-shapes", "--model", "flux-tiny-demo", "--prompts", "1", "--steps", "1",
                "--max-sequence-length", "32", "--true-cfg", "3", "--out", tmp.resolve("ok").toString());
        assertEquals(0, r.exit(), r.err());
        r = CheckGoldenCommandTest.run("eval-shapes", "--model", "flux-tiny-demo", "--prompts", "1", "--steps", "1", "--max-sequence-length", "600",
                "--out", tmp.resolve("long").toString());
        assertNotEquals(0, r.exit());
        assertTrue(r.err().contains("max sequence length must be in 1..512"), r.err());
        r = CheckGoldenCommandTest.run("eval-shapes", "--model", "flux-tiny-demo", "--true-cfg", "0.5", "--out", tmp.resolve("cfg").toString());
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("--true-cfg must be >= 1"), r.err());
    }
}
