package io.mmdit4j.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.mmdit4j.image.PngImages;
import io.mmdit4j.research.SweepRunner;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code mmdit sweep} from flags, {@code mmdit plot}, {@code generate --mg-norm}, and their argument errors. */
class SweepCommandTest {
    @Test
    void sweepFromFlagsThenPlotTheStatistics(@TempDir Path tmp) throws IOException {
        Path out = tmp.resolve("sweep");
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("sweep", "--prompt", "a wolf", "--seed", "3", "--w", "0", "--w", "2",
                "--layers", "1-", "--mg-pos", "vivid colors", "--mg-neg", "washed out", "--mg-norm", "keep-temb-norm",
                "--width", "32", "--height", "32", "--steps", "2", "--max-sequence-length", "16", "--rows", "w", "--cols", "norm",
                "--out", out.toString());
        assertEquals(0, r.exit(), r.err());
        List<List<String>> rows = SweepRunner.readCsvRows(out.resolve("results.csv"));
        assertEquals(2, rows.size(), "w=0 is the reference: 2 cells");
        assertEquals("keep-temb-norm", rows.get(1).get(SweepRunner.RESULT_COLUMNS.indexOf("norm_control")));
        assertTrue(r.out().contains("sheet.png"), r.out());

        Path plots = tmp.resolve("plots");
        r = CheckGoldenCommandTest.run("plot", out.toString(), "--out", plots.toString());
        assertEquals(0, r.exit(), r.err());
        for (List<String> row : rows) {
            Path png = plots.resolve(row.get(0) + ".png");
            assertTrue(Files.isRegularFile(png), png.toString());
            assertTrue(ImageIO.read(png.toFile()).getWidth() >= 1200);
        }
        r = CheckGoldenCommandTest.run("plot", out.toString(), "--cell", "nosuchcell", "--out", plots.toString());
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("no statistics for cell nosuchcell"), r.err());
    }

    @Test
    void badSweepArgumentsAreClearErrors(@TempDir Path tmp) {
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("sweep", "--prompt", "a", "--layers", "2-9", "--width", "32", "--height", "32",
                "--steps", "1", "--out", tmp.resolve("s").toString());
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("outside this model's 5 blocks"), r.err());
        r = CheckGoldenCommandTest.run("sweep", "--prompt", "a", "--layers", "9-", "--w", "2", "--width", "32", "--height", "32",
                "--steps", "1", "--no-stats", "--out", tmp.resolve("open").toString());
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.err().contains("warning") && r.err().contains("selects no block"), "an open range past the last block warns: " + r.err());
        r = CheckGoldenCommandTest.run("sweep", "--prompt", "a", "--mg-norm", "unit", "--out", tmp.toString());
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("norm control 'unit'"), r.err());
        r = CheckGoldenCommandTest.run("sweep", "--out", tmp.toString());
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("at least one prompt"), r.err());
        r = CheckGoldenCommandTest.run("sweep", "--spec", tmp.resolve("none.json").toString());
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("none.json"), r.err());
        r = CheckGoldenCommandTest.run("plot", tmp.toString());
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("stats.csv: no such file"), r.err());
    }

    @Test
    void generateRecordsTheNormControlAndReproducesIt(@TempDir Path tmp) throws IOException {
        Path first = tmp.resolve("a.png"), plain = tmp.resolve("plain.png"), again = tmp.resolve("again.png");
        String[] common = {"generate", "--prompt", "a fox", "--width", "32", "--height", "32", "--steps", "2", "--max-sequence-length", "16",
                "--mg-preset", "aesthetics", "--mg-layers", "1-"};
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run(concat(common, "--mg-norm", "keep-temb-norm", "--out", first.toString()));
        assertEquals(0, r.exit(), r.err());
        assertEquals("keep-temb-norm", new ObjectMapper().readTree(PngImages.readText(first).get("mmdit4j")).get("mg_norm").asText());
        assertEquals(0, CheckGoldenCommandTest.run(concat(common, "--out", plain.toString())).exit());
        assertTrue(!java.util.Arrays.equals(Files.readAllBytes(first), Files.readAllBytes(plain)), "norm control changes the image");
        assertEquals(0, CheckGoldenCommandTest.run("generate", "--from", first.toString(), "--out", again.toString()).exit());
        assertArrayEquals(Files.readAllBytes(first), Files.readAllBytes(again), "--from repeats the norm control");
    }

    private static String[] concat(String[] a, String... b) {
        String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
