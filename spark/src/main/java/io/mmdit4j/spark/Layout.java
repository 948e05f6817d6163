package io.mmdit4j.spark;

/**
 * The output folder of a job: {@code images/<id>.png} (each with its settings record, as {@code generate} writes it),
 * {@code records/<id>.json} (one per row, the proof a row is done), and the results table of the last run as
 * {@code results.parquet/} (a Spark/Parquet dataset) and {@code results.csv}.
 */
public final class Layout {
    private Layout() {}

    public static final String IMAGES = "images";
    public static final String RECORDS = "records";
    public static final String RESULTS_PARQUET = "results.parquet";
    public static final String RESULTS_CSV = "results.csv";
    /** Held (a file lock) by the driver of the job writing into the folder. */
    public static final String LOCK = ".mmdit4j-spark.lock";

    static String image(String id) {
        return IMAGES + "/" + id + ".png";
    }
}
