package io.mmdit4j.spark;

import io.mmdit4j.guidance.Direction;
import io.mmdit4j.pipeline.GenerationRequest;
import io.mmdit4j.pipeline.InvalidRequestException;
import org.junit.jupiter.api.Test;

import java.util.HashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Rows to requests: every column's meaning, and the message a bad value fails its row with. */
class RowRequestsTest {

    private static Map<String, String> row(String... kv) {
        Map<String, String> m = new HashMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put(kv[i], kv[i + 1]);
        return m;
    }

    private static String error(String... kv) {
        return assertThrows(InvalidRequestException.class, () -> RowRequests.parse(row(kv))).getMessage();
    }

    @Test
    void everyColumnReachesTheRequest() {
        GenerationRequest r = RowRequests.parse(row("prompt", "a fox", "seed", "18446744073709551615", "size", "48x32", "steps", "3",
                "max_sequence_length", "32.0", "guidance_scale", "2.5", "mg_preset", "aesthetics", "mg_w", "2", "mg_layers", "1-3", "mg_steps", "0-1",
                "mg_rows", "cond"));
        assertEquals(java.util.List.of("a fox"), r.prompts());
        assertEquals(-1L, r.seeds()[0], "2^64-1 as its 64-bit pattern");
        assertEquals(48, r.width());
        assertEquals(32, r.height());
        assertEquals(3, r.steps());
        assertEquals(32, r.maxSequenceLength(), "512.0-style numbers (Parquet and JSON doubles) are whole numbers");
        assertEquals(2.5, r.option(io.mmdit4j.pipeline.EmbeddedGuidance.class).scale());
        Direction d = r.guidance().get(0);
        assertEquals("aesthetics", d.preset());
        assertEquals(2.0, d.w());
        assertEquals("1-3", d.layers().toString());
        assertEquals(io.mmdit4j.guidance.CfgRows.COND, d.rows());

        Direction custom = RowRequests.parse(row("prompt", "p", "seed", "1", "mg_pos", "sharp", "mg_neg", "blurry")).guidance().get(0);
        assertEquals("custom0", custom.label(), "as generate labels its first --mg-pos/--mg-neg pair");
        assertNull(custom.w(), "left open: the model's recommendation");
        assertTrue(RowRequests.parse(row("prompt", "", "seed", "0")).guidance().isEmpty());
        io.mmdit4j.pipeline.ClassifierFreeGuidance cfg = RowRequests.parse(row("prompt", "p", "seed", "0", "cfg", "4.5", "negative_prompt", "blurry"))
                .option(io.mmdit4j.pipeline.ClassifierFreeGuidance.class);
        assertEquals(4.5, cfg.scale());
        assertEquals(java.util.List.of("blurry"), cfg.negativePrompts());
        GenerationRequest wh = RowRequests.parse(row("prompt", "p", "seed", "0", "width", "64", "height", "32"));
        assertEquals(64, wh.width());
        assertEquals(32, wh.height());
    }

    @Test
    void eachBadValueNamesItsColumn() {
        assertEquals("'prompt' is missing", error("seed", "1"));
        assertEquals("'seed' is missing", error("prompt", "p"));
        for (String bad : new String[] {"abc", "-1", "1.5", "18446744073709551616", "", "+3"}) {
            assertTrue(error("prompt", "p", "seed", bad).startsWith("'seed' '" + bad + "': expected a whole number in 0..18446744073709551615"), bad);
        }
        assertTrue(error("prompt", "p", "seed", "1", "size", "100x64").contains("multiple of 16"));
        assertTrue(error("prompt", "p", "seed", "1", "size", "big").startsWith("'size' 'big': expected WIDTHxHEIGHT"));
        assertTrue(error("prompt", "p", "seed", "1", "size", "32x32", "width", "32").contains("not both"));
        assertTrue(error("prompt", "p", "seed", "1", "steps", "0").contains("steps must be in 1..10000"));
        assertTrue(error("prompt", "p", "seed", "1", "steps", "two").startsWith("'steps' 'two': expected a whole number"));
        assertTrue(error("prompt", "p", "seed", "1", "negative_prompt", "dark").startsWith("'negative_prompt' needs 'cfg'"));
        assertTrue(error("prompt", "p", "seed", "1", "cfg", "101").startsWith("'cfg' '101': classifier-free guidance scale must be in 0..100"));
        assertTrue(error("prompt", "p", "seed", "1", "mg_w", "3").startsWith("'mg_w' without a guidance direction"));
        assertTrue(error("prompt", "p", "seed", "1", "mg_pos", "sharp").contains("'mg_pos' and 'mg_neg' go together"));
        assertTrue(error("prompt", "p", "seed", "1", "mg_preset", "aesthetics", "mg_w", "1e9").startsWith("'mg_w' '1e9': "));
        assertTrue(error("prompt", "p", "seed", "1", "mg_preset", "aesthetics", "mg_w", "NaN").startsWith("'mg_w' 'NaN': expected a finite number"));
        assertTrue(error("prompt", "p", "seed", "1", "mg_preset", "aesthetics", "mg_layers", "five").startsWith("'mg_layers' 'five': "));
        assertTrue(error("prompt", "p", "seed", "1", "mg_preset", "aesthetics", "mg_rows", "sideways").startsWith("'mg_rows' 'sideways': "));
        assertTrue(error("prompt", "p", "seed", "1", "mg_preset", " ").startsWith("'mg_preset' ' ': "));
    }

    @Test
    void idsAreTheTablesOwnElseAHashOfTheSettingsAndTheModel() {
        InputRow given = InputRow.of(0, row("id", " r-01 ", "prompt", "p", "seed", "1"), null, "model=m");
        assertEquals("r-01", given.id);
        assertTrue(given.explicitId);
        InputRow a = InputRow.of(3, row("prompt", "p", "seed", "1"), null, "model=m");
        InputRow b = InputRow.of(9, row("seed", "1", "prompt", "p", "unknown", "x"), null, "model=m");
        assertEquals(a.id, b.id, "the same settings, wherever they are in the table");
        assertFalse(a.explicitId);
        assertTrue(a.id.matches("[0-9a-f]{16}"));
        assertNotEquals(a.id, InputRow.of(3, row("prompt", "p", "seed", "2"), null, "model=m").id);
        assertNotEquals(a.id, InputRow.of(3, row("prompt", "p", "seed", "1"), null, "model=other").id, "another model makes other images");
        InputRow bad = InputRow.of(0, row("id", "../x", "prompt", "p", "seed", "1"), null, "model=m");
        assertTrue(bad.idError.startsWith("'id' '../x': ids are 1 to 128 letters"), bad.idError);
        assertEquals(a.id, bad.id, "the row still has a file-safe identity for its record");
    }

    @Test
    void csvFieldsAreQuotedWhenTheyMustBe() {
        ResultRecord r = new ResultRecord();
        r.row = 7;
        r.id = "x";
        r.status = ResultRecord.FAILED;
        r.error = "'size' '1,2': bad";
        r.prompt = "say \"hi\"\nthere";
        r.seed = "";
        String line = SparkJob.csvLine(r.toRow());
        assertTrue(line.startsWith("7,x,failed,,\"'size' '1,2': bad\",\"say \"\"hi\"\"\nthere\",\"\","), line);
        assertTrue(line.endsWith(",0,,,\r\n"), line);
    }
}
