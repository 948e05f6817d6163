package io.mmdit4j.spark;

import org.apache.spark.SparkConf;
import org.apache.spark.sql.SparkSession;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

/**
 * {@code mmdit spark}: batch generation from a prompt table on Apache Spark. Without a master (none given, none from
 * spark-submit) it runs in local mode, {@code local[*]}, in this JVM; under spark-submit the cluster's master and
 * resources apply. Exit status: 0 when the job ran (rows that failed are in the results table), 1 when it failed as a
 * whole (e.g. a row under {@code --fail-fast}), 2 for bad arguments or a table the job cannot read.
 */
@Command(name = "mmdit spark", mixinStandardHelpOptions = true, version = "mmdit4j 0.1.0", sortOptions = false,
        description = {"Generate one image per row of a prompt table (JSONL, CSV or Parquet) on Apache Spark: one pipeline per executor JVM, rows of "
                + "one shape batched, each image written atomically with its settings, a results table (Parquet and CSV); a rerun makes only "
                + "the rows not done yet.",
                "Columns: prompt, seed (required), id, size (WxH) or width/height, steps, max_sequence_length, guidance_scale, cfg, negative_prompt, mg_preset or "
                        + "mg_pos/mg_neg, mg_w, mg_layers, mg_steps, mg_rows."})
public final class SparkMain implements Callable<Integer> {
    @Option(names = "--input", required = true, description = "the prompt table: a .jsonl/.json, .csv or .parquet file, or a folder of them (with --format)")
    Path input;
    @Option(names = "--format", description = "jsonl, csv or parquet (default: from --input's extension)")
    String format;
    @Option(names = "--out", required = true, description = "output folder: images/, records/, results.parquet, results.csv (on a cluster: shared by every executor)")
    Path out;
    @Option(names = "--model", defaultValue = "flux-tiny-demo", description = "a model name, diffusers folder or checkpoint, as generate takes it (default: ${DEFAULT-VALUE})")
    String model;
    @Option(names = "--dtype", description = "fp32 or bf16 (default: the model's)")
    String dtype;
    @Option(names = "--device", defaultValue = "auto", description = "auto (the GPU Spark assigns to each task, else the CPU), cpu, cuda or cuda:N (default: ${DEFAULT-VALUE})")
    String device;
    @Option(names = "--master", description = "Spark master (default: spark-submit's, else local[*])")
    String master;
    @Option(names = "--partitions", defaultValue = "0", description = "partitions the rows are spread over (default: Spark's default parallelism)")
    int partitions;
    @Option(names = "--batch", defaultValue = "4", description = "rows of one shape generated together, at most (default: ${DEFAULT-VALUE})")
    int batch;
    @Option(names = "--fail-fast", description = "stop the job at the first row that fails (default: record the row's error and go on)")
    boolean failFast;
    @Option(names = "--threads", defaultValue = "0", description = "libtorch threads per executor JVM (default: libtorch's, all cores)")
    int threads;
    @Option(names = "--no-mmap", description = "read the weights into memory instead of mapping the checkpoint files")
    boolean noMmap;
    @Option(names = "--ignore-memory-check", description = "generate even when a batch's memory estimate exceeds the memory available")
    boolean ignoreMemoryCheck;
    @Option(names = "--allow-extra-columns", description = "ignore columns the job does not know (default: refuse them, as they may be typos)")
    boolean allowExtraColumns;

    @Override
    public Integer call() {
        SparkJob.Options o = new SparkJob.Options(input, format, out, model, dtype, device, !noMmap, !ignoreMemoryCheck, partitions, batch, failFast,
                threads, allowExtraColumns);
        SparkSession spark = session(master, failFast);
        try {
            JobSummary s = SparkJob.run(spark, o);
            s.lines().forEach(System.out::println);
        } finally {
            spark.stop();
        }
        return 0;
    }

    /** The session: spark-submit's master, else {@code master}, else local mode on every core. */
    static SparkSession session(String master, boolean failFast) {
        SparkConf conf = new SparkConf(); // spark-submit's settings arrive as spark.* system properties
        SparkSession.Builder b = SparkSession.builder().appName("mmdit4j");
        String m = master != null ? master : conf.contains("spark.master") ? conf.get("spark.master") : "local[*]";
        b.master(m);
        if (m.startsWith("local")) {
            if (!conf.contains("spark.driver.bindAddress")) b.config("spark.driver.bindAddress", "127.0.0.1");
            if (!conf.contains("spark.driver.host")) b.config("spark.driver.host", "localhost");
        }
        if (failFast && !conf.contains("spark.task.maxFailures")) b.config("spark.task.maxFailures", "1");
        return b.getOrCreate();
    }

    public static void main(String[] args) {
        System.exit(commandLine().execute(args));
    }

    /** The command line with the project's error policy: bad input is one line and exit status 2, a failed job exit status 1. */
    public static CommandLine commandLine() {
        CommandLine cli = new CommandLine(new SparkMain());
        cli.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
            if (e instanceof SparkJob.JobFailedException) {
                commandLine.getErr().println("mmdit spark: error: " + e.getMessage());
                return 1;
            }
            if (e instanceof IllegalArgumentException || e instanceof java.io.UncheckedIOException) {
                commandLine.getErr().println("mmdit spark: error: " + e.getMessage());
                return 2;
            }
            throw e;
        });
        return cli;
    }
}
