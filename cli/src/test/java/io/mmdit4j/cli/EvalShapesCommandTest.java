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
}
