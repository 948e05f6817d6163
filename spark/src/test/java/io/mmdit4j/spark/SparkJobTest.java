package io.mmdit4j.spark;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.mmdit4j.cli.Main;
import io.mmdit4j.image.PngImages;
import io.mmdit4j.pipeline.GenerationSettings;
import io.mmdit4j.pipeline.InvalidRequestException;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The job in local mode on the demo model: 24 prompts over 3 partitions with mixed guidance make the command line's
 * images (±1 for batch rounding) and a complete results table; bad rows fail alone with their messages; the three input
 * formats agree; --fail-fast stops the job.
 */
class SparkJobTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Row i of the 24: sizes 32x32 and 48x32, 2 steps, and every kind of guidance (none, presets, custom pairs, w, layers, steps). */
    static Map<String, String> row(int i) {
        Map<String, String> r = new LinkedHashMap<>();
        if (i % 3 == 0) r.put("id", String.format("r%02d", i)); // a third with ids of their own, the rest hashed
        r.put("prompt", List.of("a red fox in the snow", "a lighthouse at dusk", "a bowl of fruit", "an old map", "two cats, one asleep").get(i % 5));
        r.put("seed", Long.toString(i * 7919L + 3));
        r.put("size", i % 4 == 3 ? "48x32" : "32x32");
        r.put("steps", "2");
        switch (i % 6) {
            case 1 -> r.put("mg_preset", "aesthetics");
            case 2 -> {
                r.put("mg_preset", "complexity");
                r.put("mg_w", "2");
            }
            case 3 -> {
                r.put("mg_pos", "sharp, detailed");
                r.put("mg_neg", "blurry");
                r.put("mg_w", "1.5");
                r.put("mg_layers", "2-");
            }
            case 4 -> {
                r.put("mg_preset", "aesthetics");
                r.put("mg_w", "4");
                r.put("mg_layers", "1-3");
                r.put("mg_steps", "0");
            }
            default -> { } // unguided
        }
        return r;
    }

    static Path jsonl(Path file, List<Map<String, String>> rows) throws IOException {
        List<String> lines = new ArrayList<>();
        for (Map<String, String> r : rows) {
            ObjectNode o = JSON.createObjectNode();
            r.forEach((k, v) -> {
                if (k.equals("seed") || k.equals("steps") || k.equals("mg_w")) o.put(k, Double.valueOf(v) == Math.rint(Double.valueOf(v)) && !v.contains(".")
                        ? o.numberNode(Long.parseLong(v)) : o.numberNode(Double.parseDouble(v)));
                else o.put(k, v);
            });
            lines.add(o.toString());
        }
        Files.createDirectories(file.getParent());
        return Files.write(file, lines);
    }

    static List<Map<String, String>> rows(int n) {
        List<Map<String, String>> rows = new ArrayList<>();
        for (int i = 0; i < n; i++) rows.add(row(i));
        return rows;
    }

    /** The results table as written (Parquet), by row. */
    static List<ResultRecord> parquet(SparkSession spark, Path out) {
        return spark.read().parquet(out.resolve(Layout.RESULTS_PARQUET).toString()).collectAsList().stream().map(ResultRecord::fromRow)
                .sorted(java.util.Comparator.comparingLong(r -> r.row)).toList();
    }

    /** The command line's image for a row's settings. */
    static Path cli(Map<String, String> r, Path file) {
        List<String> args = new ArrayList<>(List.of("generate", "--prompt", r.get("prompt"), "--seed", r.get("seed"), "--steps", r.get("steps")));
        String[] size = r.get("size").split("x");
        args.addAll(List.of("--width", size[0], "--height", size[1]));
        if (r.containsKey("mg_preset")) args.addAll(List.of("--mg-preset", r.get("mg_preset")));
        if (r.containsKey("mg_pos")) args.addAll(List.of("--mg-pos", r.get("mg_pos"), "--mg-neg", r.get("mg_neg")));
        for (String c : new String[] {"mg_w", "mg_layers", "mg_steps"}) {
            if (r.containsKey(c)) args.addAll(List.of("--" + c.replace('_', '-'), r.get(c)));
        }
        args.addAll(List.of("--out", file.toString()));
        assertEquals(0, Main.commandLine().execute(args.toArray(new String[0])), "generate " + args);
        return file;
    }

    @Test
    void twentyFourPromptsOverThreePartitionsWithMixedGuidanceMakeTheCommandLinesImages(@TempDir Path tmp) throws IOException {
        SparkSession spark = LocalSpark.session();
        List<Map<String, String>> rows = rows(24);
        Path input = jsonl(tmp.resolve("prompts.jsonl"), rows);
        Path out = tmp.resolve("out");
        long t0 = System.nanoTime();
        JobSummary s = SparkJob.run(spark, SparkJob.Options.of(input, out).withPartitions(3));
        System.out.printf("24 images over 3 partitions in %.1f s (generation %.1f s)%n", (System.nanoTime() - t0) / 1e9, s.seconds());
        assertEquals(24, s.rows());
        assertEquals(24, s.made());
        assertEquals(0, s.failed());
        assertEquals(0, s.doneBefore());
        assertEquals(3, s.partitions());
        assertEquals(1, ExecutorPipelines.loads("flux-tiny-demo"), "one pipeline for the JVM, shared by both task threads and every partition");
        assertTrue(s.executors().stream().mapToInt(JobSummary.ExecutorLoad::loads).sum() <= 1);

        List<ResultRecord> table = parquet(spark, out);
        assertEquals(24, table.size());
        Set<String> ids = new HashSet<>();
        Set<Integer> partitions = new HashSet<>();
        Map<String, Set<String>> guidanceByBatch = new HashMap<>();
        for (int i = 0; i < 24; i++) {
            ResultRecord r = table.get(i);
            assertEquals(i, r.row);
            assertEquals(ResultRecord.OK, r.status, r.error);
            assertNull(r.error);
            assertTrue(ids.add(r.id), "unique ids");
            if (rows.get(i).containsKey("id")) assertEquals(rows.get(i).get("id"), r.id);
            assertEquals(Layout.image(r.id), r.path);
            assertEquals(rows.get(i).get("prompt"), r.prompt);
            assertEquals(rows.get(i).get("seed"), r.seed);
            assertNotNull(r.timings);
            assertNotNull(r.finishedAt);
            partitions.add(r.partition);
            JsonNode settings = JSON.readTree(r.settings);
            guidanceByBatch.computeIfAbsent(r.batch, k -> new HashSet<>()).add(settings.get("modulation_guidance").toString());

            Path image = out.resolve(r.path);
            Map<String, String> meta = PngImages.readText(image);
            assertEquals(settings, JSON.readTree(meta.get(GenerationSettings.METADATA_KEY)), "the PNG carries the record's settings");
            Path again = cli(rows.get(i), tmp.resolve("cli/" + i + ".png"));
            int diff = LocalSpark.maxDiff(image, again);
            assertTrue(diff <= 1, "row " + i + " differs from the command line's image by " + diff + " levels");
            JsonNode cliSettings = JSON.readTree(PngImages.readText(again).get(GenerationSettings.METADATA_KEY));
            assertEquals(cliSettings, settings, "row " + i + ": the same settings as generate records");
        }
        assertEquals(3, partitions.size());
        assertTrue(guidanceByBatch.values().stream().anyMatch(g -> g.size() > 2), "a batch mixes rows of different guidance: " + guidanceByBatch);

        List<String> csv = Files.readAllLines(out.resolve(Layout.RESULTS_CSV));
        assertEquals(25, csv.size(), "a header and one line per row");
        assertEquals(String.join(",", ResultRecord.SCHEMA.fieldNames()), csv.get(0));
        List<Row> csvRows = spark.read().option("header", "true").option("multiLine", "true").option("escape", "\"")
                .csv(out.resolve(Layout.RESULTS_CSV).toString()).collectAsList();
        assertEquals(24, csvRows.size());
        for (Row r : csvRows) {
            ResultRecord p = table.get(Integer.parseInt(r.getAs("row")));
            assertEquals(p.id, r.getAs("id"));
            assertEquals(p.settings, r.getAs("settings"));
            assertEquals(p.timings, r.getAs("timings"));
        }
        try (Stream<Path> files = Files.list(out.resolve(Layout.IMAGES))) {
            assertEquals(24, files.count(), "24 images and nothing else");
        }

        JobSummary again = SparkJob.run(spark, SparkJob.Options.of(input, out).withPartitions(3));
        assertEquals(0, again.made(), "a finished table is not made again");
        assertEquals(24, again.doneBefore());
        assertEquals(table.stream().map(r -> r.id + r.run).toList(), parquet(spark, out).stream().map(r -> r.id + r.run).toList());
    }

    @Test
    void rowsWithTheirOwnNegativePromptsShareABatch(@TempDir Path tmp) throws IOException {
        List<Map<String, String>> rows = new ArrayList<>();
        String[] negatives = {"blurry", "dark, murky", null, "blurry"};
        for (int i = 0; i < 4; i++) {
            Map<String, String> r = new LinkedHashMap<>(Map.of("prompt", "a wolf on a hill " + i, "seed", String.valueOf(50 + i), "size", "32x32",
                    "steps", "2", "cfg", "3"));
            if (negatives[i] != null) r.put("negative_prompt", negatives[i]);
            if (i == 1) r.put("mg_preset", "aesthetics");
            rows.add(r);
        }
        Path input = jsonl(tmp.resolve("cfg.jsonl"), rows);
        Path out = tmp.resolve("out");
        JobSummary s = SparkJob.run(LocalSpark.session(), SparkJob.Options.of(input, out).withModel("cosmos-tiny-demo").withPartitions(1));
        assertEquals(4, s.made(), parquet(LocalSpark.session(), out).stream().map(r -> r.error).toList().toString());
        List<ResultRecord> table = parquet(LocalSpark.session(), out);
        assertEquals(1, table.stream().map(r -> r.batch).distinct().count(), "one batch: negative prompts differ per row");
        for (int i = 0; i < 4; i++) {
            ResultRecord r = table.get(i);
            Map<String, String> row = rows.get(i);
            List<String> args = new ArrayList<>(List.of("generate", "--model", "cosmos-tiny-demo", "--prompt", row.get("prompt"), "--seed", row.get("seed"),
                    "--width", "32", "--height", "32", "--steps", "2", "--cfg", "3"));
            if (negatives[i] != null) args.addAll(List.of("--negative-prompt", negatives[i]));
            if (row.containsKey("mg_preset")) args.addAll(List.of("--mg-preset", row.get("mg_preset")));
            Path cli = tmp.resolve("cli-" + i + ".png");
            args.addAll(List.of("--out", cli.toString()));
            assertEquals(0, Main.commandLine().execute(args.toArray(new String[0])));
            int diff = LocalSpark.maxDiff(out.resolve(r.path), cli);
            assertTrue(diff <= 1, "row " + i + " differs from the command line's image by " + diff + " levels");
            JsonNode settings = JSON.readTree(r.settings);
            assertEquals(negatives[i] == null ? "" : negatives[i], settings.path("negative_prompt").asText(), "row " + i);
            Map<String, String> text = PngImages.readText(out.resolve(r.path));
            assertEquals(negatives[i] == null ? "" : negatives[i], JSON.readTree(text.get("mmdit4j")).path("negative_prompt").asText());
            assertEquals(negatives[i] != null, text.get("parameters").contains("\nNegative prompt: " + negatives[i] + "\n"), text.get("parameters"));
        }
    }

    @Test
    void badRowsFailAloneWithTheirMessages(@TempDir Path tmp) throws IOException {
        List<String> lines = List.of(
                "{\"prompt\": \"good one\", \"seed\": 1, \"size\": \"32x32\", \"steps\": 1}",
                "{\"seed\": 2, \"size\": \"32x32\", \"steps\": 1}",
                "{\"prompt\": \"bad seed\", \"seed\": \"twelve\", \"size\": \"32x32\", \"steps\": 1}",
                "{\"prompt\": \"negative seed\", \"seed\": -5, \"size\": \"32x32\", \"steps\": 1}",
                "{\"prompt\": \"unknown preset\", \"seed\": 3, \"size\": \"32x32\", \"steps\": 1, \"mg_preset\": \"sparkle\"}",
                "{\"prompt\": \"good two\", \"seed\": 4, \"size\": \"32x32\", \"steps\": 1, \"mg_preset\": \"aesthetics\"}",
                "{\"prompt\": \"odd size\", \"seed\": 5, \"size\": \"100x64\", \"steps\": 1}",
                "{\"prompt\": \"layer outside\", \"seed\": 6, \"size\": \"32x32\", \"steps\": 1, \"mg_preset\": \"aesthetics\", \"mg_layers\": \"9\"}",
                "{\"prompt\": \"bad id\", \"id\": \"a/b\", \"seed\": 7, \"size\": \"32x32\", \"steps\": 1}",
                "{\"prompt\": \"good three\", \"seed\": 8, \"size\": \"32x32\", \"steps\": 1, \"mg_pos\": \"sharp\", \"mg_neg\": \"blurry\"}",
                "this line is not JSON",
                "{\"prompt\": \"cfg on FLUX\", \"seed\": 9, \"size\": \"32x32\", \"steps\": 1, \"cfg\": 4}");
        Path input = Files.write(tmp.resolve("bad.jsonl"), lines);
        Path out = tmp.resolve("out");
        JobSummary s = SparkJob.run(LocalSpark.session(), SparkJob.Options.of(input, out).withPartitions(2));
        assertEquals(12, s.rows());
        assertEquals(3, s.made());
        assertEquals(9, s.failed());
        List<ResultRecord> t = parquet(LocalSpark.session(), out);
        assertEquals(12, t.size());
        String[] expected = {null, "'prompt' is missing", "'seed' 'twelve': expected a whole number in 0..18446744073709551615",
                "'seed' '-5': expected a whole number", "guidance preset 'sparkle': expected one of", null, "'size' '100x64': width must be a multiple of 16",
                "layer 9 is outside this model's 5 blocks", "'id' 'a/b': ids are 1 to 128 letters", null, "the line is not a JSON object: 'this line is not JSON'",
                "classifier-free guidance"};
        for (int i = 0; i < expected.length; i++) {
            ResultRecord r = t.get(i);
            if (expected[i] == null) {
                assertEquals(ResultRecord.OK, r.status, "row " + i + ": " + r.error);
                assertTrue(Files.isRegularFile(out.resolve(r.path)));
            } else {
                assertEquals(ResultRecord.FAILED, r.status, "row " + i);
                assertNull(r.path);
                assertNull(r.settings);
                assertTrue(r.error.startsWith(expected[i]) || r.error.contains(expected[i]), "row " + i + ": " + r.error);
            }
        }
        try (Stream<Path> files = Files.list(out.resolve(Layout.IMAGES))) {
            assertEquals(3, files.count());
        }
    }

    @Test
    void aTableWithoutARequiredColumnOrWithUnknownColumnsIsRefusedBeforeAnyWork(@TempDir Path tmp) throws IOException {
        Path noSeed = Files.write(tmp.resolve("noseed.jsonl"), List.of("{\"prompt\": \"a\"}", "{\"prompt\": \"b\"}"));
        InvalidRequestException e = assertThrows(InvalidRequestException.class,
                () -> SparkJob.run(LocalSpark.session(), SparkJob.Options.of(noSeed, tmp.resolve("out"))));
        assertTrue(e.getMessage().contains("the table has no 'seed' column (columns: prompt)"), e.getMessage());
        Path typo = Files.write(tmp.resolve("typo.csv"), List.of("prompt,seed,mg_weight", "a,1,3"));
        e = assertThrows(InvalidRequestException.class, () -> SparkJob.run(LocalSpark.session(), SparkJob.Options.of(typo, tmp.resolve("out"))));
        assertTrue(e.getMessage().contains("unknown column mg_weight"), e.getMessage());
        Path twice = Files.write(tmp.resolve("twice.csv"), List.of("id,prompt,seed", "x,a,1", "x,b,2"));
        e = assertThrows(InvalidRequestException.class, () -> SparkJob.run(LocalSpark.session(), SparkJob.Options.of(twice, tmp.resolve("out"))));
        assertTrue(e.getMessage().contains("id 'x' is on rows 0 and 1 (0-based): ids must be unique"), e.getMessage());
        e = assertThrows(InvalidRequestException.class, () -> SparkJob.run(LocalSpark.session(), SparkJob.Options.of(tmp.resolve("p.txt"), tmp.resolve("out"))));
        assertTrue(e.getMessage().contains("no such file"), e.getMessage());
    }

    @Test
    void csvAndParquetTablesMakeTheSameImagesAsJsonLines(@TempDir Path tmp) throws IOException {
        SparkSession spark = LocalSpark.session();
        List<Map<String, String>> rows = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            Map<String, String> r = row(i);
            r.put("id", "f" + i);
            rows.add(r);
        }
        rows.get(2).put("prompt", "a \"quoted\", comma-separated prompt\non two lines");
        Path json = jsonl(tmp.resolve("t.jsonl"), rows);
        List<String> header = List.of("id", "prompt", "seed", "size", "steps", "mg_preset", "mg_pos", "mg_neg", "mg_w", "mg_layers", "mg_steps");
        List<String> csv = new ArrayList<>(List.of(String.join(",", header)));
        for (Map<String, String> r : rows) {
            csv.add(String.join(",", header.stream().map(c -> r.containsKey(c) ? "\"" + r.get(c).replace("\"", "\"\"") + "\"" : "").toList()));
        }
        Path csvFile = Files.write(tmp.resolve("t.csv"), csv);
        Path parquet = tmp.resolve("t.parquet"); // typed columns: seed and steps as integers, mg_w as a double
        spark.read().json(json.toString()).write().parquet(parquet.toString());

        Map<String, Map<String, byte[]>> images = new LinkedHashMap<>();
        for (Path input : List.of(json, csvFile, parquet)) {
            Path out = tmp.resolve("out-" + input.getFileName());
            JobSummary s = SparkJob.run(spark, SparkJob.Options.of(input, out).withPartitions(2));
            assertEquals(4, s.made(), input + ": " + parquet(spark, out).stream().map(r -> r.error).toList());
            Map<String, byte[]> files = new HashMap<>();
            for (ResultRecord r : parquet(spark, out)) files.put(r.id, Files.readAllBytes(out.resolve(r.path)));
            images.put(input.getFileName().toString(), files);
            assertEquals(rows.get(2).get("prompt"), parquet(spark, out).get(2).prompt);
        }
        for (String id : images.get("t.jsonl").keySet()) {
            assertTrue(java.util.Arrays.equals(images.get("t.jsonl").get(id), images.get("t.csv").get(id)), id + ": CSV");
            assertTrue(java.util.Arrays.equals(images.get("t.jsonl").get(id), images.get("t.parquet").get(id)), id + ": Parquet");
        }
    }

    @Test
    void failFastStopsTheJobAtTheFirstBadRow(@TempDir Path tmp) throws IOException {
        Path input = Files.write(tmp.resolve("t.jsonl"), List.of("{\"prompt\": \"ok\", \"seed\": 1, \"size\": \"32x32\", \"steps\": 1}",
                "{\"prompt\": \"bad\", \"seed\": 1.5, \"size\": \"32x32\", \"steps\": 1}"));
        SparkJob.JobFailedException e = assertThrows(SparkJob.JobFailedException.class,
                () -> SparkJob.run(LocalSpark.session(), SparkJob.Options.of(input, tmp.resolve("out")).withPartitions(1).withFailFast(true)));
        assertTrue(e.getMessage().matches("row 1 \\(id [0-9a-f]{16}\\) failed: 'seed' '1.5': expected a whole number.* \\(--fail-fast\\)"), e.getMessage());
        assertTrue(Files.notExists(tmp.resolve("out").resolve(Layout.RESULTS_PARQUET)), "no results table for a failed job");
    }
}
