package io.mmdit4j.spark;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.mmdit4j.pipeline.InvalidRequestException;
import org.apache.spark.HashPartitioner;
import org.apache.spark.SparkContext;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.storage.StorageLevel;
import org.apache.spark.util.LongAccumulator;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import scala.Tuple2;

import java.io.BufferedWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.stream.Stream;

/**
 * The driver of a batch generation: reads the prompt table, gives every row its identity, spreads the rows over
 * partitions, runs {@link GenerateTask} on each (one pipeline per executor JVM, rows batched by shape), then writes the
 * results table (Parquet and CSV) and returns the summary. A rerun into the same folder keeps the rows already made and
 * makes the rest.
 */
public final class SparkJob {
    private static final Logger LOG = LoggerFactory.getLogger(SparkJob.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final java.time.format.DateTimeFormatter RUN_TIME = java.time.format.DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss")
            .withZone(java.time.ZoneOffset.UTC);

    private SparkJob() {}

    /**
     * What to run.
     *
     * @param partitions partitions to spread the rows over (0: Spark's default parallelism)
     * @param allowExtraColumns read tables with columns the job does not know (else they are refused, as typos would be)
     */
    public record Options(Path input, String format, Path out, String model, String dtype, String device, boolean memoryMapped,
                          boolean checkMemory, int partitions, int batch, boolean failFast, int threads, boolean allowExtraColumns) {
        public static Options of(Path input, Path out) {
            return new Options(input, null, out, "flux-tiny-demo", null, "auto", true, true, 0, 4, false, 0, false);
        }

        public Options withPartitions(int n) {
            return new Options(input, format, out, model, dtype, device, memoryMapped, checkMemory, n, batch, failFast, threads, allowExtraColumns);
        }

        public Options withFailFast(boolean f) {
            return new Options(input, format, out, model, dtype, device, memoryMapped, checkMemory, partitions, batch, f, threads, allowExtraColumns);
        }

        public Options withBatch(int b) {
            return new Options(input, format, out, model, dtype, device, memoryMapped, checkMemory, partitions, b, failFast, threads, allowExtraColumns);
        }

        public Options withModel(String m) {
            return new Options(input, format, out, m, dtype, device, memoryMapped, checkMemory, partitions, batch, failFast, threads, allowExtraColumns);
        }

        public Options withFormat(String f) {
            return new Options(input, f, out, model, dtype, device, memoryMapped, checkMemory, partitions, batch, failFast, threads, allowExtraColumns);
        }
    }

    /** The job failed as a whole (a row under --fail-fast, or a task that could not run). */
    public static final class JobFailedException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        JobFailedException(String message, Throwable cause) {
            super(message, cause);
        }
    }

    public static JobSummary run(SparkSession spark, Options o) {
        Path out = o.out().toAbsolutePath().normalize();
        if (!o.device().matches("auto|cpu|cuda(:\\d+)?")) throw new InvalidRequestException("--device " + o.device() + ": expected auto, cpu, cuda or cuda:N");
        String run = RUN_TIME.format(Instant.now()) + "-" + UUID.randomUUID().toString().substring(0, 6);
        JobConfig config = new JobConfig(o.model(), o.dtype(), o.device(), o.memoryMapped(), o.checkMemory(), out.toString(), o.batch(), o.failFast(),
                run, o.threads());
        try {
            Files.createDirectories(out.resolve(Layout.IMAGES));
            Files.createDirectories(out.resolve(Layout.RECORDS));
        } catch (IOException e) {
            throw new UncheckedIOException("--out " + out + ": cannot create: " + e.getMessage(), e);
        }
        try (FileChannel ch = FileChannel.open(out.resolve(Layout.LOCK), StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
            FileLock lock;
            try {
                lock = ch.tryLock();
            } catch (java.nio.channels.OverlappingFileLockException e) {
                lock = null; // held by another job of this JVM
            }
            if (lock == null) throw new InvalidRequestException("--out " + out + ": another job is writing into this folder");
            try {
                return run(spark, o, config, out);
            } finally {
                lock.release();
            }
        } catch (IOException e) {
            throw new UncheckedIOException(out.resolve(Layout.LOCK) + ": " + e.getMessage(), e);
        }
    }

    private static JobSummary run(SparkSession spark, Options o, JobConfig config, Path out) {
        // The model is found and checked here, once, so that a wrong name fails before any task (headers only, on the CPU: the
        // driver of a GPU cluster may have none; in local mode the executors then share this very model).
        ExecutorPipelines.Shared model = ExecutorPipelines.get(config, config.device().startsWith("cuda") ? "cpu" : GenerateTask.device(config.device(), null));
        if (model.prepared().family().video()) {
            throw new InvalidRequestException(o.model() + " makes videos; the Spark job writes images (use generate for videos)");
        }
        int leftovers = deleteLeftovers(out.resolve(Layout.IMAGES)) + deleteLeftovers(out.resolve(Layout.RECORDS));
        if (leftovers > 0) LOG.info("removed {} unfinished files of an earlier run that was stopped", leftovers);

        Dataset<Row> table = InputTable.read(spark, o.input(), o.format());
        Map<String, Integer> columns = columns(table, o.allowExtraColumns());
        String key = config.identityKey();
        JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
        jsc.setJobDescription("mmdit4j: reading " + o.input());
        JavaRDD<InputRow> rows = table.javaRDD().zipWithIndex().map(t -> inputRow(t._1(), t._2(), columns, key))
                .persist(StorageLevel.MEMORY_AND_DISK());
        try {
            return generate(spark, jsc, o, config, out, rows);
        } finally {
            rows.unpersist(false);
            jsc.clearJobGroup();
            jsc.setJobDescription(null);
        }
    }

    private static JobSummary generate(SparkSession spark, JavaSparkContext jsc, Options o, JobConfig config, Path out, JavaRDD<InputRow> rows) {
        // Identities: a table's own ids must be unique; rows whose hashed ids are equal have equal settings and are made once.
        List<Tuple2<String, Long>> ids = rows.map(r -> new Tuple2<>((r.explicitId ? "=" : "#") + r.id, r.index)).collect();
        Map<String, Long> first = new HashMap<>();
        Set<Long> repeats = new HashSet<>();
        for (Tuple2<String, Long> t : ids) {
            Long earlier = first.putIfAbsent(t._1(), t._2());
            if (earlier == null) continue;
            if (t._1().startsWith("=")) {
                throw new InvalidRequestException("--input " + o.input() + ": id '" + t._1().substring(1) + "' is on rows " + Math.min(earlier, t._2()) + " and "
                        + Math.max(earlier, t._2()) + " (0-based): ids must be unique");
            }
            repeats.add(Math.max(earlier, t._2()));
            if (t._2() < earlier) first.put(t._1(), t._2());
        }
        Set<String> recorded = recordNames(out.resolve(Layout.RECORDS));
        long found = first.keySet().stream().filter(id -> recorded.contains(id.substring(1) + ".json")).count();
        long total = ids.size(), distinct = first.size();
        int partitions = (int) Math.max(1, Math.min(distinct, o.partitions() > 0 ? o.partitions() : jsc.defaultParallelism()));

        Broadcast<Set<Long>> skip = jsc.broadcast(repeats);
        SparkContext sc = spark.sparkContext();
        LongAccumulator images = sc.longAccumulator("mmdit4j images"), failed = sc.longAccumulator("mmdit4j failed rows"),
                skipped = sc.longAccumulator("mmdit4j rows done before");
        JavaRDD<ResultRecord> records = rows.filter(r -> !skip.value().contains(r.index))
                .mapToPair(r -> new Tuple2<>(r.id, r)).partitionBy(new HashPartitioner(partitions)).values()
                .mapPartitions(new GenerateTask(config, images, failed, skipped))
                .persist(StorageLevel.MEMORY_AND_DISK());
        ProgressListener progress = new ProgressListener(images.id(), failed.id(), skipped.id(), distinct);
        sc.addSparkListener(progress);
        String what = String.format(Locale.ROOT, "mmdit4j: %d rows (%d with records already) with %s in %d partitions -> %s", distinct, found, o.model(),
                partitions, out);
        LOG.info(what.substring("mmdit4j: ".length()));
        jsc.setJobDescription(what);
        long t0 = System.nanoTime();
        try {
            records.count();
        } catch (Exception e) { // SparkException is checked for javac, though Scala declares nothing
            if (e instanceof InvalidRequestException ire) throw ire;
            throw new JobFailedException(failure(e), e);
        } finally {
            sc.removeSparkListener(progress);
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        try {
            jsc.setJobDescription("mmdit4j: writing the results table");
            Dataset<Row> results = spark.createDataFrame(records.map(ResultRecord::toRow), ResultRecord.SCHEMA).coalesce(1)
                    .sortWithinPartitions("row"); // one row per image: small, and no shuffle
            writeParquet(results, out);
            JobSummary summary = writeCsvAndSummarise(results, out, config.run(), total, repeats.size(), seconds, partitions);
            summary.lines().forEach(LOG::info);
            return summary;
        } finally {
            records.unpersist(false);
            skip.destroy();
        }
    }

    /** Known column names (normalised) to their index in the table; a missing required column or an unknown one is an error. */
    static Map<String, Integer> columns(Dataset<Row> table, boolean allowExtra) {
        Map<String, Integer> found = new LinkedHashMap<>();
        List<String> unknown = new ArrayList<>();
        String[] names = table.columns();
        for (int i = 0; i < names.length; i++) {
            String n = Columns.normalize(names[i]);
            if (Columns.KNOWN.contains(n) || n.equals(Columns.CORRUPT)) {
                if (found.put(n, i) != null) throw new InvalidRequestException("--input: column '" + n + "' appears twice");
            } else {
                unknown.add(names[i]);
            }
        }
        for (String c : Columns.REQUIRED) {
            if (!found.containsKey(c)) {
                throw new InvalidRequestException("--input: the table has no '" + c + "' column (columns: " + String.join(", ", names) + "); every row needs "
                        + String.join(" and ", Columns.REQUIRED));
            }
        }
        if (!unknown.isEmpty() && !allowExtra) {
            throw new InvalidRequestException("--input: unknown column" + (unknown.size() > 1 ? "s " : " ") + String.join(", ", unknown) + " (known: "
                    + String.join(", ", Columns.KNOWN) + "); give --allow-extra-columns to ignore them");
        }
        return found;
    }

    static InputRow inputRow(Row r, long index, Map<String, Integer> columns, String identityKey) {
        Map<String, String> v = new HashMap<>();
        String corrupt = null;
        for (Map.Entry<String, Integer> c : columns.entrySet()) {
            if (r.isNullAt(c.getValue())) continue;
            String s = r.getString(c.getValue());
            if (c.getKey().equals(Columns.CORRUPT)) corrupt = s;
            else v.put(c.getKey(), s);
        }
        return InputRow.of(index, v, corrupt, identityKey);
    }

    private static String failure(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof GenerateTask.RowFailedException) return t.getMessage() + " (--fail-fast)";
        }
        String m = e.getMessage() == null ? e.toString() : e.getMessage();
        int k = m.indexOf("RowFailedException: ");
        if (k >= 0) {
            String rest = m.substring(k + "RowFailedException: ".length());
            return rest.lines().findFirst().orElse(rest) + " (--fail-fast)";
        }
        return "the job failed: " + m.lines().findFirst().orElse(m);
    }

    private static Set<String> recordNames(Path dir) {
        Set<String> names = new HashSet<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, "*.json")) {
            for (Path p : ds) names.add(p.getFileName().toString());
        } catch (IOException e) {
            throw new UncheckedIOException(dir + ": " + e.getMessage(), e);
        }
        return names;
    }

    /** Deletes the {@code .part} files a stopped run left (this job holds the folder's lock: no other writer is active). */
    static int deleteLeftovers(Path dir) {
        int n = 0;
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, ".*.part")) {
            for (Path p : ds) {
                if (Files.isRegularFile(p) && Files.deleteIfExists(p)) n++;
            }
        } catch (IOException e) {
            throw new UncheckedIOException(dir + ": cannot remove unfinished files: " + e.getMessage(), e);
        }
        return n;
    }

    /** results.parquet, replaced as a whole: written beside it, then moved into place. */
    private static void writeParquet(Dataset<Row> results, Path out) {
        Path target = out.resolve(Layout.RESULTS_PARQUET), tmp = out.resolve("." + Layout.RESULTS_PARQUET + ".part");
        try {
            deleteTree(tmp);
            results.write().mode(SaveMode.Overwrite).parquet(tmp.toString());
            deleteTree(target);
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new UncheckedIOException(target + ": " + e.getMessage(), e);
        }
    }

    private static void deleteTree(Path p) throws IOException {
        if (!Files.exists(p)) return;
        try (Stream<Path> s = Files.walk(p)) {
            for (Path x : s.sorted(Comparator.reverseOrder()).toList()) Files.delete(x);
        }
    }

    /** results.csv (atomically, in row order) and the run's summary, from one pass over the table. */
    private static JobSummary writeCsvAndSummarise(Dataset<Row> results, Path out, String run, long total, long repeated, double seconds, int partitions) {
        Path csv = out.resolve(Layout.RESULTS_CSV);
        long made = 0, failed = 0, before = 0;
        Map<String, double[]> perExecutor = new LinkedHashMap<>(); // images, failed, busy seconds
        Map<String, Set<String>> loads = new HashMap<>();
        Map<String, Double> loadSeconds = new HashMap<>();
        try {
            Path tmp = Files.createTempFile(out, "." + Layout.RESULTS_CSV, ".part");
            try {
                try (BufferedWriter w = Files.newBufferedWriter(tmp, StandardCharsets.UTF_8)) {
                    w.write(String.join(",", ResultRecord.SCHEMA.fieldNames()));
                    w.write("\r\n");
                    Iterator<Row> it = results.toLocalIterator();
                    while (it.hasNext()) {
                        ResultRecord r = ResultRecord.fromRow(it.next());
                        w.write(csvLine(r.toRow()));
                        if (!run.equals(r.run)) {
                            before++;
                            continue;
                        }
                        double[] e = perExecutor.computeIfAbsent(r.executor, k -> new double[3]);
                        if (r.ok()) {
                            made++;
                            e[0]++;
                        } else {
                            failed++;
                            e[1]++;
                        }
                        JsonNode t = r.timings == null ? null : JSON.readTree(r.timings);
                        if (t != null) {
                            int n = Math.max(1, t.path("batch_images").asInt(1));
                            e[2] += t.path("generate_s").asDouble() / n + t.path("write_s").asDouble();
                            if (t.path("model_load_s").asDouble() > 0 && loads.computeIfAbsent(r.executor, k -> new HashSet<>()).add(r.batch)) {
                                loadSeconds.merge(r.executor, t.path("model_load_s").asDouble(), Double::sum);
                            }
                        }
                    }
                }
                ResultRecord.readableByAll(tmp);
                Files.move(tmp, csv, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            } finally {
                Files.deleteIfExists(tmp);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(csv + ": " + e.getMessage(), e);
        }
        List<JobSummary.ExecutorLoad> executors = new ArrayList<>();
        perExecutor.forEach((ex, v) -> executors.add(new JobSummary.ExecutorLoad(ex, (long) v[0], (long) v[1], loads.getOrDefault(ex, Set.of()).size(),
                loadSeconds.getOrDefault(ex, 0.0), v[2])));
        return new JobSummary(run, total, repeated, made, failed, before, seconds, partitions, executors, out);
    }

    static String csvLine(Row r) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < r.length(); i++) {
            if (i > 0) b.append(',');
            if (r.isNullAt(i)) continue;
            String s = String.valueOf(r.get(i));
            if (s.isEmpty() || s.contains(",") || s.contains("\"") || s.contains("\n") || s.contains("\r") || !s.strip().equals(s)) {
                b.append('"').append(s.replace("\"", "\"\"")).append('"');
            } else {
                b.append(s);
            }
        }
        return b.append("\r\n").toString();
    }
}
