package io.mmdit4j.spark;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * What happened to one row: a line of the results table, and a file of its own ({@code records/<id>.json}, written
 * atomically after the row's image) that makes the row done for a rerun.
 */
public final class ResultRecord implements Serializable {
    private static final long serialVersionUID = 1L;
    private static final ObjectMapper JSON = new ObjectMapper();

    public static final String OK = "ok";
    public static final String FAILED = "failed";

    /** The results table's columns, in order. */
    public static final StructType SCHEMA = new StructType()
            .add("row", DataTypes.LongType, false)
            .add("id", DataTypes.StringType, false)
            .add("status", DataTypes.StringType, false)
            .add("path", DataTypes.StringType, true)
            .add("error", DataTypes.StringType, true)
            .add("prompt", DataTypes.StringType, true)
            .add("seed", DataTypes.StringType, true)
            .add("settings", DataTypes.StringType, true)
            .add("timings", DataTypes.StringType, true)
            .add("executor", DataTypes.StringType, true)
            .add("partition", DataTypes.IntegerType, true)
            .add("batch", DataTypes.StringType, true)
            .add("run", DataTypes.StringType, true)
            .add("finished_at", DataTypes.StringType, true);

    /** The row's position in this run's input. */
    public long row;
    public String id;
    /** {@link #OK} or {@link #FAILED}. */
    public String status;
    /** The image, relative to the output folder ({@code images/<id>.png}); null when it failed. */
    public String path;
    public String error;
    public String prompt;
    /** The seed as text (0..2^64-1). */
    public String seed;
    /** The image's settings record (what its PNG carries), JSON. */
    public String settings;
    /** The batch's phases in seconds and its size, JSON. */
    public String timings;
    /** Executor id and host that made it. */
    public String executor;
    public int partition;
    /** The batch it was made in ({@code p<partition>-b<n>}). */
    public String batch;
    /** The run that made it (runs that find it done keep it as it is). */
    public String run;
    /** ISO-8601 instant. */
    public String finishedAt;

    public boolean ok() {
        return OK.equals(status);
    }

    public Row toRow() {
        return RowFactory.create(row, id, status, path, error, prompt, seed, settings, timings, executor, partition, batch, run, finishedAt);
    }

    public static ResultRecord fromRow(Row r) {
        ResultRecord x = new ResultRecord();
        x.row = r.getLong(0);
        x.id = r.getString(1);
        x.status = r.getString(2);
        x.path = r.getString(3);
        x.error = r.getString(4);
        x.prompt = r.getString(5);
        x.seed = r.getString(6);
        x.settings = r.getString(7);
        x.timings = r.getString(8);
        x.executor = r.getString(9);
        x.partition = r.isNullAt(10) ? -1 : r.getInt(10);
        x.batch = r.getString(11);
        x.run = r.getString(12);
        x.finishedAt = r.getString(13);
        return x;
    }

    /** The record as one JSON object (settings and timings nested). */
    public ObjectNode toJson() {
        ObjectNode o = JSON.createObjectNode();
        o.put("row", row).put("id", id).put("status", status).put("path", path).put("error", error).put("prompt", prompt).put("seed", seed);
        o.set("settings", parseOrNull(settings));
        o.set("timings", parseOrNull(timings));
        o.put("executor", executor).put("partition", partition).put("batch", batch).put("run", run).put("finished_at", finishedAt);
        return o;
    }

    public static ResultRecord fromJson(JsonNode o) {
        ResultRecord x = new ResultRecord();
        x.row = o.path("row").asLong(-1);
        x.id = text(o, "id");
        x.status = text(o, "status");
        x.path = text(o, "path");
        x.error = text(o, "error");
        x.prompt = text(o, "prompt");
        x.seed = text(o, "seed");
        x.settings = o.hasNonNull("settings") ? o.get("settings").toString() : null;
        x.timings = o.hasNonNull("timings") ? o.get("timings").toString() : null;
        x.executor = text(o, "executor");
        x.partition = o.path("partition").asInt(-1);
        x.batch = text(o, "batch");
        x.run = text(o, "run");
        x.finishedAt = text(o, "finished_at");
        return x;
    }

    private static String text(JsonNode o, String k) {
        JsonNode v = o.get(k);
        return v == null || v.isNull() ? null : v.asText();
    }

    private static JsonNode parseOrNull(String json) {
        if (json == null) return null;
        try {
            return JSON.readTree(json);
        } catch (IOException e) {
            return JSON.getNodeFactory().textNode(json);
        }
    }

    /** Writes {@code records/<id>.json} atomically: a {@code .part} file, then a move over any older record. */
    public void write(Path recordsDir) {
        Path file = recordsDir.resolve(id + ".json");
        try {
            Files.createDirectories(recordsDir);
            Path tmp = Files.createTempFile(recordsDir, "." + id + ".json", ".part");
            try {
                Files.write(tmp, JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(toJson()));
                readableByAll(tmp);
                try {
                    Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
                } catch (AtomicMoveNotSupportedException e) {
                    Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
                }
            } finally {
                Files.deleteIfExists(tmp);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": cannot write the row's record: " + e.getMessage(), e);
        }
    }

    /** Temporary files are created 0600; outputs are read by others (rw-r--r--, where the file system has POSIX permissions). */
    static void readableByAll(Path file) throws IOException {
        try {
            Files.setPosixFilePermissions(file, java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--"));
        } catch (UnsupportedOperationException e) {
            // not a POSIX file system: its defaults apply
        }
    }

    /**
     * The row's record when it is done: the record says {@code ok} and its image exists. A record that cannot be read (cut
     * short or edited by hand), a failed row, or a record whose image is gone is not done: the row is made again.
     */
    public static ResultRecord done(Path out, String id) {
        Path file = out.resolve(Layout.RECORDS).resolve(id + ".json");
        try {
            ResultRecord r = fromJson(JSON.readTree(new String(Files.readAllBytes(file), StandardCharsets.UTF_8)));
            if (!r.ok() || !id.equals(r.id) || r.path == null) return null;
            Path image = out.resolve(r.path);
            return Files.isRegularFile(image) && Files.size(image) > 0 ? r : null;
        } catch (NoSuchFileException e) {
            return null;
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }
}
