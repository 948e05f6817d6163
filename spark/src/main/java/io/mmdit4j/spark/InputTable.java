package io.mmdit4j.spark;

import io.mmdit4j.pipeline.InvalidRequestException;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.functions;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Reads the prompt table with every column as text, so that each value is checked by the job's own rules
 * ({@link RowRequests}) and a bad value fails its row instead of the schema: JSON lines with
 * {@code primitivesAsString} (a line that is not JSON lands in {@value Columns#CORRUPT}), CSV with a header (RFC 4180
 * quoting, values may span lines), Parquet cast to strings.
 */
public final class InputTable {
    private InputTable() {}

    public static final List<String> FORMATS = List.of("jsonl", "csv", "parquet");

    /** The format named, else the input's extension ({@code .jsonl}/{@code .json}/{@code .ndjson}, {@code .csv}, {@code .parquet}). */
    public static String format(Path input, String format) {
        String f = format == null ? null : format.toLowerCase(Locale.ROOT);
        if (f == null) {
            String name = input.getFileName() == null ? "" : input.getFileName().toString().toLowerCase(Locale.ROOT);
            if (name.endsWith(".jsonl") || name.endsWith(".json") || name.endsWith(".ndjson")) f = "jsonl";
            else if (name.endsWith(".csv")) f = "csv";
            else if (name.endsWith(".parquet")) f = "parquet";
            else throw new InvalidRequestException("--input " + input + ": cannot tell the format from the name; give --format jsonl, csv or parquet");
        }
        if (f.equals("json") || f.equals("ndjson")) f = "jsonl";
        if (!FORMATS.contains(f)) throw new InvalidRequestException("--format " + format + ": expected jsonl, csv or parquet");
        return f;
    }

    /** The table with every column cast to text, names as in the file. */
    public static Dataset<Row> read(SparkSession spark, Path input, String format) {
        if (!Files.exists(input)) throw new InvalidRequestException("--input " + input + ": no such file or folder");
        String path = input.toAbsolutePath().toString();
        Dataset<Row> df = switch (format(input, format)) {
            case "jsonl" -> spark.read().option("primitivesAsString", "true").option("mode", "PERMISSIVE")
                    .option("columnNameOfCorruptRecord", Columns.CORRUPT).json(path);
            case "csv" -> spark.read().option("header", "true").option("multiLine", "true").option("escape", "\"").option("mode", "PERMISSIVE")
                    .csv(path);
            default -> spark.read().parquet(path);
        };
        List<Column> cols = new ArrayList<>();
        for (String c : df.columns()) cols.add(functions.col("`" + c.replace("`", "``") + "`").cast("string").as(c));
        return df.select(cols.toArray(new Column[0]));
    }
}
