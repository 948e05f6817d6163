package io.mmdit4j.spark;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.File;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Resumability: {@code mmdit spark} in a JVM of its own is killed (SIGKILL) part way through 24 rows; a rerun into the
 * same folder makes exactly the rows that were not done, keeps the others as they were, and leaves one image and one
 * record per row.
 */
class KillAndRerunTest {

    private static List<String> names(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    /** The ids whose rows are done: an ok record and its image. */
    private static Set<String> done(Path out) throws IOException {
        Set<String> ids = new HashSet<>();
        for (String n : names(out.resolve(Layout.RECORDS))) {
            if (!n.endsWith(".json") || n.startsWith(".")) continue;
            String id = n.substring(0, n.length() - ".json".length());
            if (ResultRecord.done(out, id) != null) ids.add(id);
        }
        return ids;
    }

    @Test
    void aJobKilledMidwayIsFinishedByARerunWithoutRedoingOrDuplicatingRows(@TempDir Path tmp) throws Exception {
        List<Map<String, String>> rows = new ArrayList<>();
        for (int i = 0; i < 24; i++) {
            Map<String, String> r = SparkJobTest.row(i);
            r.put("size", "96x96"); // slow enough to be stopped part way (0.05 to 0.5 s a batch of 2 on 2 cores)
            r.put("steps", "2");
            rows.add(r);
        }
        Path input = SparkJobTest.jsonl(tmp.resolve("prompts.jsonl"), rows);
        Path out = tmp.resolve("out");
        Path log = tmp.resolve("child.log");

        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(ManagementFactory.getRuntimeMXBean().getInputArguments()); // Spark's --add-opens flags, native-memory settings
        for (String p : new String[] {"mmdit.home", "log4j2.configurationFile"}) {
            if (System.getProperty(p) != null) cmd.add("-D" + p + "=" + System.getProperty(p));
        }
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), SparkMain.class.getName(), "--input", input.toString(), "--out", out.toString(),
                "--master", "local[1]", "--partitions", "3", "--batch", "2"));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().put("OMP_WAIT_POLICY", "PASSIVE");
        pb.environment().put("SPARK_LOCAL_IP", "127.0.0.1");
        Process child = pb.start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(180);
        try {
            while (true) {
                if (!child.isAlive()) fail("the job ended (exit " + child.exitValue() + ") before it could be killed:\n" + Files.readString(log));
                if (System.nanoTime() > deadline) fail("the job made no progress in 180 s:\n" + Files.readString(log));
                if (Files.isDirectory(out.resolve(Layout.RECORDS)) && done(out).size() >= 6) break;
                Thread.sleep(10);
            }
        } finally {
            child.destroyForcibly(); // SIGKILL: no shutdown hooks, writes cut wherever they are
            child.waitFor(30, TimeUnit.SECONDS);
        }

        Set<String> before = done(out);
        System.out.println("killed after " + before.size() + " of 24 rows; images/: " + names(out.resolve(Layout.IMAGES)).size() + " files");
        assertTrue(before.size() >= 6 && before.size() < 24, before.size() + " rows done when killed");
        assertFalse(Files.exists(out.resolve(Layout.RESULTS_PARQUET)), "the killed run wrote no results table");
        Map<String, byte[]> records = new HashMap<>(), images = new HashMap<>();
        for (String id : before) {
            records.put(id, Files.readAllBytes(out.resolve(Layout.RECORDS).resolve(id + ".json")));
            images.put(id, Files.readAllBytes(out.resolve(Layout.image(id))));
        }

        JobSummary s = SparkJob.run(LocalSpark.session(), SparkJob.Options.of(input, out).withPartitions(3).withBatch(2));
        assertEquals(24, s.rows());
        assertEquals(before.size(), s.doneBefore(), "every row the killed run finished is kept");
        assertEquals(24 - before.size(), s.made(), "and only the others are made");
        assertEquals(0, s.failed());
        for (String id : before) {
            assertArrayEquals(records.get(id), Files.readAllBytes(out.resolve(Layout.RECORDS).resolve(id + ".json")), id + ": record untouched");
            assertArrayEquals(images.get(id), Files.readAllBytes(out.resolve(Layout.image(id))), id + ": image untouched");
        }
        List<ResultRecord> table = SparkJobTest.parquet(LocalSpark.session(), out);
        assertEquals(24, table.size());
        Set<String> ids = new HashSet<>();
        for (ResultRecord r : table) {
            assertTrue(ids.add(r.id), "one line per row");
            assertEquals(ResultRecord.OK, r.status);
            assertEquals(before.contains(r.id), !r.run.equals(s.run()), r.id + ": made by the run that finished it");
        }
        List<String> expected = new ArrayList<>();
        for (String id : ids) expected.add(id + ".png");
        assertEquals(expected.stream().sorted().toList(), names(out.resolve(Layout.IMAGES)), "one image per row, no leftovers");
        assertEquals(expected.stream().map(n -> n.replace(".png", ".json")).sorted().toList(), names(out.resolve(Layout.RECORDS)));
        assertTrue(Files.readString(log).contains("loaded flux-tiny-demo"), "the child's log");
        System.out.println("child log:" + File.separator + Files.readString(log).lines().filter(l -> l.contains("INFO")).limit(12).toList());
    }
}
