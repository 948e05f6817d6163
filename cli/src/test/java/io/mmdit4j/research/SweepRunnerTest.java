package io.mmdit4j.research;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.mmdit4j.image.A1111Infotext;
import io.mmdit4j.image.PngImages;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The committed example sweep (a small version of it): every cell's image exists and carries the settings of its CSV row,
 * statistics and contact sheets are written, and a second run does no generation work.
 */
class SweepRunnerTest {
    private static final Path EXAMPLE = Path.of("examples/sweep-demo.json");
    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void theExampleSpecIsTheDocumentedGrid() throws IOException {
        SweepSpec s = SweepSpec.read(EXAMPLE);
        assertEquals("flux-tiny-demo", s.model());
        assertEquals(List.of(2, 2, 3, 2), List.of(s.prompts().size(), s.seeds().size(), s.w().size(), s.layers().size()));
        assertEquals(List.of(64, 64, 2), List.of(s.width(), s.height(), s.steps()));
        SweepRunner r = new SweepRunner(s, Sweeps.settings(s, DemoModel.REGISTRY), Path.of("unused"), null);
        assertEquals(24, r.grid().size());
        assertEquals(28, r.cells().size(), "24 grid cells and the w=0 reference of each prompt and seed");
    }

    /** A loader that counts how often the model had to be loaded; it loads once and hands out a view that the run may close. */
    private static Supplier<SweepModel> counting(SweepModel[] shared, SweepSettings s, AtomicInteger loads) {
        return () -> {
            loads.incrementAndGet();
            if (shared[0] == null) shared[0] = DemoModel.load(s);
            SweepModel m = shared[0];
            return new SweepModel() {
                public String family() { return m.family(); }
                public int numBlocks() { return m.numBlocks(); }
                public org.bytedeco.pytorch.Tensor generate(List<SweepCell> rows, io.mmdit4j.guidance.NormControl norm,
                                                            io.mmdit4j.guidance.ConditioningObserver observer, Runnable onForward) {
                    return m.generate(rows, norm, observer, onForward);
                }
                public void modulations(io.mmdit4j.guidance.BlockConditioning c, io.mmdit4j.guidance.ModulationVisitor v) { m.modulations(c, v); }
                public void close() { }
            };
        };
    }

    @Test
    void runsASmallVersionWritesEverythingAndResumesWithoutWork(@TempDir Path out) throws IOException {
        SweepSpec.Builder b = SweepSpec.read(EXAMPLE).toBuilder();
        b.seeds = List.of(0L);
        b.w = List.of(1.0, 3.0);
        b.width = 32;
        b.height = 32;
        b.maxSequenceLength = 16;
        SweepSpec spec = b.build();
        SweepSettings settings = Sweeps.settings(spec, DemoModel.REGISTRY);
        SweepRunner runner = new SweepRunner(spec, settings, out, null);
        AtomicInteger loads = new AtomicInteger();
        SweepModel[] shared = new SweepModel[1];
        try {
            runAndResume(out, spec, settings, runner, loads, shared);
        } finally {
            if (shared[0] != null) shared[0].close();
        }
    }

    private void runAndResume(Path out, SweepSpec spec, SweepSettings settings, SweepRunner runner, AtomicInteger loads, SweepModel[] shared)
            throws IOException {

        SweepRunner.Summary first = runner.run(counting(shared, settings, loads));
        assertEquals(8, first.gridPoints());
        assertEquals(10, first.cells(), "2 prompts x 2 w x 2 schedules, and 2 references");
        assertEquals(10, first.generated());
        assertEquals(3, first.batches(), "batches of 4");
        assertEquals(3 * 2, first.forwards(), "one forward per batch and step");

        // every cell: image exists and its PNG settings match the CSV row
        List<List<String>> rows = SweepRunner.readCsvRows(out.resolve("results.csv"));
        assertEquals(10, rows.size());
        Map<String, Integer> col = new HashMap<>();
        for (int i = 0; i < SweepRunner.RESULT_COLUMNS.size(); i++) col.put(SweepRunner.RESULT_COLUMNS.get(i), i);
        Set<String> ids = new HashSet<>();
        for (List<String> row : rows) {
            String id = row.get(col.get("cell"));
            assertTrue(ids.add(id), "one row per cell");
            Path png = out.resolve(row.get(col.get("image")));
            assertTrue(Files.isRegularFile(png), png.toString());
            Map<String, String> text = PngImages.readText(png);
            JsonNode m = JSON.readTree(text.get("mmdit4j"));
            assertEquals(row.get(col.get("prompt")), A1111Infotext.parse(text.get("parameters")).get("Prompt"));
            assertEquals(row.get(col.get("prompt")), m.get("prompts").get(0).asText());
            assertEquals(row.get(col.get("seed")), text.get("seed"));
            assertEquals(id, m.get("sweep_cell").asText());
            assertEquals(List.of(32, 32, 2), List.of(m.get("width").asInt(), m.get("height").asInt(), m.get("steps").asInt()));
            JsonNode mg = m.get("modulation_guidance");
            boolean reference = row.get(col.get("direction")).isEmpty();
            if (reference) {
                assertEquals(0, mg.size());
                assertEquals(id, row.get(col.get("reference")));
                assertEquals("1.000000", row.get(col.get("ssim")), "a reference is identical to itself");
            } else {
                JsonNode d = mg.get(0);
                assertEquals(row.get(col.get("direction")), d.get("label").asText());
                assertEquals(row.get(col.get("pos")), d.get("pos").asText());
                assertEquals(row.get(col.get("neg")), d.get("neg").asText());
                assertEquals(Double.parseDouble(row.get(col.get("w"))), d.get("w").asDouble());
                assertEquals(row.get(col.get("layers")), d.get("layers").asText());
                assertEquals(row.get(col.get("step_window")), d.get("steps").asText());
                assertEquals(row.get(col.get("norm_control")), m.path("mg_norm").asText("none"));
                double ssim = Double.parseDouble(row.get(col.get("ssim")));
                assertTrue(ssim > -1 && ssim < 1, "a guided image differs from its reference: SSIM " + ssim);
                assertTrue(ids.contains(row.get(col.get("reference"))) || rows.stream().anyMatch(r -> r.get(0).equals(row.get(col.get("reference")))));
            }
        }
        // statistics: 2 steps x 5 blocks per cell
        List<List<String>> stats = SweepRunner.readCsvRows(out.resolve("stats.csv"));
        assertEquals(10 * 2 * 5, stats.size());
        assertEquals(ids, new HashSet<>(stats.stream().map(r -> r.get(0)).toList()));
        assertEquals(10, Files.readAllLines(out.resolve("results.jsonl")).size());
        assertEquals(100, Files.readAllLines(out.resolve("stats.jsonl")).size());
        // one contact sheet per prompt (one seed), rows = w, columns = reference + 2 schedules
        assertEquals(List.of(out.resolve("sheets/sheet-prompt0.png"), out.resolve("sheets/sheet-prompt1.png")), first.sheets());
        for (Path sheet : first.sheets()) {
            var img = ImageIO.read(sheet.toFile());
            assertTrue(img.getWidth() > 3 * ContactSheet.MIN_CELL && img.getHeight() > 2 * ContactSheet.MIN_CELL, sheet.toString());
        }

        // the same sweep again: nothing to do, the model is not even loaded
        byte[] results = Files.readAllBytes(out.resolve("results.csv"));
        byte[] statsBytes = Files.readAllBytes(out.resolve("stats.csv"));
        SweepRunner.Summary again = runner.run(counting(shared, settings, loads));
        assertEquals(0, again.generated());
        assertEquals(10, again.skipped());
        assertEquals(0, again.forwards());
        assertEquals(1, loads.get(), "no model load on a finished sweep");
        assertArrayEquals(results, Files.readAllBytes(out.resolve("results.csv")));
        assertArrayEquals(statsBytes, Files.readAllBytes(out.resolve("stats.csv")));

        // a lost image and a half-written row (an interrupted run): only that cell is made again, with no duplicate rows
        String lost = rows.get(5).get(0);
        Files.delete(out.resolve("images/" + lost + ".png"));
        Files.writeString(out.resolve("results.csv"), "deadbeef,images/dead", java.nio.file.StandardOpenOption.APPEND);
        SweepRunner.Summary resumed = runner.run(counting(shared, settings, loads));
        assertEquals(1, resumed.generated());
        assertEquals(2, resumed.forwards(), "one batch of one cell, 2 steps");
        List<List<String>> after = SweepRunner.readCsvRows(out.resolve("results.csv"));
        assertEquals(10, after.size());
        assertEquals(ids, new HashSet<>(after.stream().map(r -> r.get(0)).toList()));
        assertEquals(100, SweepRunner.readCsvRows(out.resolve("stats.csv")).size());
        assertEquals(10, Files.readAllLines(out.resolve("results.jsonl")).size());
        assertTrue(Files.isRegularFile(out.resolve("images/" + lost + ".png")));
    }

    /**
     * Issue item 8: images damaged by hand (cut short, replaced by other bytes, another size) made every rerun fail while
     * drawing the sheets; now their cells count as unfinished and are made again.
     */
    @Test
    void damagedImagesAreMadeAgainInsteadOfFailingEveryRerun(@TempDir Path out) throws IOException {
        SweepSpec.Builder b = SweepSpec.read(EXAMPLE).toBuilder();
        b.prompts = List.of("a red fox");
        b.seeds = List.of(0L);
        b.w = List.of(1.0, 3.0);
        b.layers = List.of("1-");
        b.width = 32;
        b.height = 32;
        b.maxSequenceLength = 16;
        b.stats = false;
        SweepSpec spec = b.build();
        SweepSettings settings = Sweeps.settings(spec, DemoModel.REGISTRY);
        AtomicInteger loads = new AtomicInteger();
        SweepModel[] shared = new SweepModel[1];
        try {
            SweepRunner.Summary first = new SweepRunner(spec, settings, out, null).run(counting(shared, settings, loads));
            assertEquals(3, first.generated(), "the reference and two weights");
            List<List<String>> rows = SweepRunner.readCsvRows(out.resolve("results.csv"));
            Path reference = out.resolve(rows.get(0).get(1)), cut = out.resolve(rows.get(1).get(1)), other = out.resolve(rows.get(2).get(1));
            byte[] referenceBytes = Files.readAllBytes(reference);
            Files.write(reference, java.util.Arrays.copyOf(referenceBytes, referenceBytes.length / 2));             // cut short
            Files.writeString(cut, "not a PNG any more");                                                          // replaced
            PngImages.write(other, new java.awt.image.BufferedImage(8, 8, java.awt.image.BufferedImage.TYPE_INT_RGB), Map.of()); // another size

            SweepRunner.Summary again = new SweepRunner(spec, settings, out, null).run(counting(shared, settings, loads));
            assertEquals(3, again.generated(), "every damaged cell is made again");
            assertArrayEquals(referenceBytes, Files.readAllBytes(reference), "the same image as before");
            assertEquals(3, SweepRunner.readCsvRows(out.resolve("results.csv")).size(), "one row per cell");
            assertEquals(32, ImageIO.read(cut.toFile()).getWidth());
            assertEquals(0, new SweepRunner(spec, settings, out, null).run(counting(shared, settings, loads)).generated(), "then finished");
        } finally {
            if (shared[0] != null) shared[0].close();
        }
    }

    @Test
    void badSpecsAreClearErrors(@TempDir Path tmp) throws IOException {
        Path f = tmp.resolve("bad.json");
        Files.writeString(f, "{\"prompts\": [\"a\"], \"weights\": [1]}");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SweepSpec.read(f));
        assertTrue(e.getMessage().contains("bad.json") && e.getMessage().contains("unknown sweep spec key 'weights'"), e.getMessage());
        Files.writeString(f, "{\"prompts\": [\"a\"], \"layers\": [\"5-x\"]}");
        e = assertThrows(IllegalArgumentException.class, () -> SweepSpec.read(f));
        assertTrue(e.getMessage().contains("5-x"), e.getMessage());
        Files.writeString(f, "{\"prompts\": [\"a\"], \"layout\": {\"rows\": \"w\", \"cols\": \"colour\"}}");
        e = assertThrows(IllegalArgumentException.class, () -> SweepSpec.read(f));
        assertTrue(e.getMessage().contains("unknown axis 'colour'"), e.getMessage());
        Files.writeString(f, "{\"prompts\": [\"a\"], \"directions\": [{\"label\": \"x\", \"pos\": \"p\"}]}");
        e = assertThrows(IllegalArgumentException.class, () -> SweepSpec.read(f));
        assertTrue(e.getMessage().contains("directions[0]"), e.getMessage());
        Files.writeString(f, "{\"prompts\": [\"a\"");
        e = assertThrows(IllegalArgumentException.class, () -> SweepSpec.read(f));
        assertTrue(e.getMessage().contains("not valid JSON"), e.getMessage());
        assertFalse(SweepSpec.fromJson(JSON.readTree("{\"prompts\": \"one\", \"_note\": 1}")).prompts().isEmpty(), "a single value is a one-value axis");
    }
}
