package io.mmdit4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.mmdit4j.research.SweepAnalyzer;
import io.mmdit4j.research.SweepRunner;
import io.mmdit4j.research.SweepSpec;
import io.mmdit4j.shapes.Scene;
import io.mmdit4j.shapes.ShapesAnalyzer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code sweep --analyze shapes}: the shapes analyzer's reading of every image as extra results columns. The demo model has
 * random weights, so the values are whatever the analyzer reads; the test checks that they are valid and are the analyzer's
 * reading of the written PNG.
 */
class SweepAnalyzeTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final List<String> SHAPES_COLUMNS = List.of("found", "colour", "shape", "size", "background", "mean_area");

    /** A two-cell sweep (the reference and one guided cell) at 32×32, one step. */
    private static CheckGoldenCommandTest.Run sweep(Path out, String... more) {
        List<String> args = new ArrayList<>(List.of("sweep", "--prompt", "two red circles on a white background", "--seed", "1",
                "--w", "2", "--layers", "1-", "--width", "32", "--height", "32", "--steps", "1", "--max-sequence-length", "16",
                "--no-stats", "--out", out.toString()));
        args.addAll(List.of(more));
        return CheckGoldenCommandTest.run(args.toArray(String[]::new));
    }

    private static List<String> header(Path csv) throws IOException {
        return Arrays.asList(Files.readAllLines(csv).get(0).split(","));
    }

    @Test
    void shapesAddsTheAnalyzersReadingOfEveryImage(@TempDir Path tmp) throws IOException {
        Path out = tmp.resolve("sweep");
        CheckGoldenCommandTest.Run r = sweep(out, "--analyze", "shapes");
        assertEquals(0, r.exit(), r.err());
        List<String> columns = new ArrayList<>(SweepRunner.RESULT_COLUMNS);
        columns.addAll(SHAPES_COLUMNS);
        assertEquals(columns, header(out.resolve("results.csv")), "the analyzer's columns after the usual ones");
        List<List<String>> rows = SweepRunner.readCsvRows(out.resolve("results.csv"));
        List<String> jsonl = Files.readAllLines(out.resolve("results.jsonl"));
        assertEquals(2, rows.size());
        assertEquals(2, jsonl.size());
        List<String> colours = Arrays.stream(Scene.Palette.values()).map(p -> p.word).toList();
        List<String> shapes = Arrays.stream(Scene.Shape.values()).map(s -> s.noun).toList();
        List<String> sizes = Arrays.stream(Scene.Size.values()).map(s -> s.word).toList();
        for (int i = 0; i < rows.size(); i++) {
            List<String> row = rows.get(i);
            assertEquals(columns.size(), row.size());
            String found = col(row, "found"), colour = col(row, "colour"), shape = col(row, "shape"), size = col(row, "size");
            int n = Integer.parseInt(found);
            assertTrue(n >= 0, found);
            assertTrue(n == 0 ? colour.isEmpty() && shape.isEmpty() && size.isEmpty()
                    : colours.contains(colour) && shapes.contains(shape) && sizes.contains(size), row.toString());
            assertTrue(colours.contains(col(row, "background")), row.toString());
            assertTrue(col(row, "mean_area").matches("\\d+\\.\\d"), "pixels, one decimal: " + row);

            // the same as the analyzer reads from the PNG written for the cell
            ShapesAnalyzer.Analysis a = ShapesAnalyzer.analyze(ImageIO.read(out.resolve(col(row, "image")).toFile()));
            assertEquals(a.count(), n);
            assertEquals(a.count() == 0 ? "" : a.colour().word, colour);
            assertEquals(a.count() == 0 ? "" : a.shape().noun, shape);
            assertEquals(a.count() == 0 ? "" : a.size().word, size);
            assertEquals(a.background().word, col(row, "background"));
            assertEquals(String.format(Locale.ROOT, "%.1f", a.meanArea()), col(row, "mean_area"));

            // the JSONL row: the same values, numbers as numbers
            JsonNode o = JSON.readTree(jsonl.get(i));
            assertEquals(columns, iterableToList(o.fieldNames()));
            assertTrue(o.get("found").isIntegralNumber() && o.get("found").asInt() == n, o.toString());
            assertTrue(o.get("mean_area").isNumber() && o.get("mean_area").asDouble() == Double.parseDouble(col(row, "mean_area")), o.toString());
            assertEquals(colour, o.get("colour").asText());
            assertEquals(col(row, "background"), o.get("background").asText());
        }
        assertEquals("shapes", JSON.readTree(out.resolve("spec.json").toFile()).path("analyze").asText(), "the effective spec names it");

        // resuming with the same setting: nothing to make, files unchanged
        byte[] csv = Files.readAllBytes(out.resolve("results.csv"));
        r = sweep(out, "--analyze", "shapes");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.err().contains("0 cells made, 2 already finished"), r.err());
        assertArrayEquals(csv, Files.readAllBytes(out.resolve("results.csv")));

        // resuming without the analyzer would remake every cell under other columns: refused, naming the setting to use
        r = sweep(out);
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("analyze 'shapes'") && r.err().contains("--analyze shapes"), r.err());
        assertArrayEquals(csv, Files.readAllBytes(out.resolve("results.csv")), "a refused run changes nothing");
    }

    @Test
    void offWritesTheUsualColumnsAndTheFlagReplacesTheSpecs(@TempDir Path tmp) throws IOException {
        Path spec = tmp.resolve("spec.json"), out = tmp.resolve("sweep");
        Files.writeString(spec, "{\"prompts\": [\"a square\"], \"analyze\": \"shapes\"}"); // --prompt replaces the prompt
        CheckGoldenCommandTest.Run r = sweep(out, "--spec", spec.toString(), "--analyze", "none");
        assertEquals(0, r.exit(), r.err());
        assertEquals(SweepRunner.RESULT_COLUMNS, header(out.resolve("results.csv")), "off: the columns as without the option");
        for (List<String> row : SweepRunner.readCsvRows(out.resolve("results.csv"))) assertEquals(SweepRunner.RESULT_COLUMNS.size(), row.size());
        for (String line : Files.readAllLines(out.resolve("results.jsonl"))) {
            assertEquals(SweepRunner.RESULT_COLUMNS, iterableToList(JSON.readTree(line).fieldNames()));
        }
        assertFalse(JSON.readTree(out.resolve("spec.json").toFile()).has("analyze"), "off: spec.json as without the option");

        r = sweep(out, "--analyze", "shapes");
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("analyze 'none'") && r.err().contains("--analyze none"), r.err());
    }

    @Test
    void unknownValuesAreClearErrors(@TempDir Path tmp) throws IOException {
        CheckGoldenCommandTest.Run r = sweep(tmp.resolve("s"), "--analyze", "colours");
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("'colours'") && r.err().contains("[none, shapes]"), r.err());
        assertFalse(Files.exists(tmp.resolve("s")), "nothing written");

        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> SweepSpec.fromJson(JSON.readTree("{\"prompts\": [\"a\"], \"analyze\": \"Shapes\"}")));
        assertTrue(e.getMessage().contains("'Shapes'") && e.getMessage().contains("[none, shapes]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> SweepSpec.fromJson(JSON.readTree("{\"prompts\": [\"a\"], \"analyze\": true}")));
        assertTrue(e.getMessage().contains("analyze"), e.getMessage());
        assertEquals(SweepAnalyzer.NONE, SweepSpec.fromJson(JSON.readTree("{\"prompts\": [\"a\"]}")).analyze(), "absent = none");
        assertEquals(SweepAnalyzer.SHAPES, SweepSpec.fromJson(JSON.readTree("{\"prompts\": [\"a\"], \"analyze\": \"shapes\"}")).analyze());
    }

    private static String col(List<String> row, String name) {
        List<String> columns = new ArrayList<>(SweepRunner.RESULT_COLUMNS);
        columns.addAll(SHAPES_COLUMNS);
        return row.get(columns.indexOf(name));
    }

    private static List<String> iterableToList(java.util.Iterator<String> it) {
        List<String> out = new ArrayList<>();
        it.forEachRemaining(out::add);
        return out;
    }
}
