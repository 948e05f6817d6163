package io.mmdit4j.spark;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.mmdit4j.guidance.Direction;
import io.mmdit4j.pipeline.ClassifierFreeGuidance;
import io.mmdit4j.pipeline.GenerationRequest;
import io.mmdit4j.pipeline.GenerationResult;
import io.mmdit4j.pipeline.GenerationSettings;
import io.mmdit4j.pipeline.InvalidRequestException;
import io.mmdit4j.pipeline.Outputs;
import io.mmdit4j.pipeline.Pipeline;
import io.mmdit4j.sampling.StepListener;
import io.mmdit4j.sampling.Timings;
import org.apache.spark.SparkEnv;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.resource.ResourceInformation;
import org.apache.spark.util.LongAccumulator;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * One partition of the prompt table, on an executor: rows already done are kept as they are; every other row becomes a
 * request with the API's checks (a bad row fails alone, with its message); rows of one shape (size, steps, text length,
 * options) are generated together, up to {@link JobConfig#batch} at a time, each with its own prompt, seed and guidance
 * (a direction per guided row with a one-hot row weight); each image is written atomically with its own settings, then
 * its record. A batch that fails is retried row by row, so only the row at fault fails.
 */
final class GenerateTask implements FlatMapFunction<Iterator<InputRow>, ResultRecord> {
    private static final long serialVersionUID = 1L;
    private static final Logger LOG = LoggerFactory.getLogger(GenerateTask.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    private final JobConfig config;
    private final LongAccumulator images;
    private final LongAccumulator failed;
    private final LongAccumulator skipped;

    GenerateTask(JobConfig config, LongAccumulator images, LongAccumulator failed, LongAccumulator skipped) {
        this.config = config;
        this.images = images;
        this.failed = failed;
        this.skipped = skipped;
    }

    /** A row that passed its checks, with its settings resolved against the model. */
    private record Pending(InputRow row, GenerationSettings settings) {}

    /** A row failed and the job was asked to stop at the first failure. */
    static final class RowFailedException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        RowFailedException(String message, Throwable cause) {
            super(message, cause);
        }
    }

    @Override
    public Iterator<ResultRecord> call(Iterator<InputRow> input) {
        TaskContext tc = TaskContext.get();
        Partition p = new Partition(tc == null ? 0 : tc.partitionId(), executorName(), device(config.device(), tc));
        List<InputRow> rows = new ArrayList<>();
        input.forEachRemaining(rows::add);
        rows.sort(Comparator.comparingLong(r -> r.index));
        long t0 = System.nanoTime();
        List<Pending> todo = new ArrayList<>();
        for (InputRow row : rows) {
            ResultRecord done = row.idError == null && row.corrupt == null ? ResultRecord.done(p.out, row.id) : null;
            if (done != null) {
                done.row = row.index;
                p.records.add(done);
                p.skipped++;
                skipped.add(1);
                continue;
            }
            GenerationSettings s;
            try {
                s = settings(row, p);
            } catch (RuntimeException e) {
                p.fail(row, e, null, null);
                continue;
            }
            todo.add(new Pending(row, s));
        }
        Map<String, List<Pending>> shapes = new LinkedHashMap<>();
        for (Pending x : todo) shapes.computeIfAbsent(shapeKey(x.settings), k -> new ArrayList<>()).add(x);
        for (List<Pending> same : shapes.values()) {
            for (int from = 0; from < same.size(); from += config.batch()) {
                generate(same.subList(from, Math.min(same.size(), from + config.batch())), p, "p" + p.index + "-b" + p.batches++);
            }
        }
        p.records.sort(Comparator.comparingLong(r -> r.row));
        LOG.info(String.format(Locale.ROOT, "partition %d on %s: %d rows: %d images, %d failed, %d done before, in %.1f s", p.index, p.executor,
                rows.size(), p.made, p.failedRows, p.skipped, (System.nanoTime() - t0) / 1e9));
        return p.records.iterator();
    }

    /** The row's request, checked and resolved against the model (its headers; the weights are not needed yet). */
    private GenerationSettings settings(InputRow row, Partition p) {
        if (row.corrupt != null) throw new InvalidRequestException("the line is not a JSON object: " + InputRow.quote(row.corrupt));
        if (row.idError != null) throw new InvalidRequestException(row.idError);
        GenerationRequest request = RowRequests.parse(row.values);
        ExecutorPipelines.Shared model = p.model();
        if (model.prepared().family().video()) {
            throw new InvalidRequestException(config.model() + " makes videos; the Spark job writes images (use generate for videos)");
        }
        return model.prepared().resolve(request);
    }

    /** What rows must share to be generated together: every setting but the prompt, the seed, the guidance and the negative prompt. */
    static String shapeKey(GenerationSettings s) {
        ObjectNode j = s.toJson();
        j.remove(List.of("prompts", "seed", "seeds", "modulation_guidance", "negative_prompt"));
        return j.toString();
    }

    /**
     * One request for the rows: their prompts, seeds and negative prompts, and each row's resolved directions with a row
     * weight of 1 on that row only, so each image is guided as it would be alone.
     */
    static GenerationRequest batchRequest(List<GenerationSettings> rows) {
        int n = rows.size();
        List<String> prompts = new ArrayList<>();
        long[] seeds = new long[n];
        List<Direction> guidance = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            GenerationSettings s = rows.get(i);
            prompts.add(s.prompt(0));
            seeds[i] = s.seed(0);
            for (Direction d : s.guidance()) {
                double[] onlyThisRow = new double[n];
                onlyThisRow[i] = 1;
                guidance.add(new Direction(d.label(), d.preset(), d.pos(), d.neg(), d.w(), d.layers(), d.steps(), d.rows(), onlyThisRow));
            }
        }
        GenerationRequest.Builder b = rows.get(0).toRequest().toBuilder().prompts(prompts).imagesPerPrompt(1).seeds(seeds).guidance(guidance);
        ClassifierFreeGuidance cfg = rows.get(0).option(ClassifierFreeGuidance.class);
        if (cfg != null && rows.stream().anyMatch(s -> !s.option(ClassifierFreeGuidance.class).negativePrompts().isEmpty())) {
            List<String> negatives = new ArrayList<>(); // one per row: a row without one has diffusers' default ""
            for (GenerationSettings s : rows) negatives.add(s.option(ClassifierFreeGuidance.class).negatives(1).get(0));
            b.option(new ClassifierFreeGuidance(cfg.scale(), negatives));
        }
        return b.build();
    }

    private void generate(List<Pending> batch, Partition p, String batchId) {
        ExecutorPipelines.Loaded loaded;
        try {
            loaded = p.model().acquire();
        } catch (RuntimeException e) {
            for (Pending x : batch) p.fail(x.row, e, batchId, null);
            return;
        }
        Pipeline pipe = loaded.pipeline();
        ExecutorPipelines.Shared model = p.model();
        GenerationResult result;
        double waitS, generateS;
        long w0 = System.nanoTime();
        model.turn.lock();
        try {
            long g0 = System.nanoTime();
            waitS = (g0 - w0) / 1e9;
            result = pipe.generate(pipe.resolve(batchRequest(batch.stream().map(Pending::settings).toList())), StepListener.NONE, null);
            generateS = (System.nanoTime() - g0) / 1e9;
        } catch (RuntimeException e) {
            result = null;
            waitS = generateS = 0;
            if (batch.size() == 1) {
                model.turn.unlock();
                p.fail(batch.get(0).row, e, batchId, null);
                return;
            }
            LOG.warn("partition {} batch {} of {} rows failed ({}); generating its rows one by one", p.index, batchId, batch.size(), e.toString());
        } finally {
            if (model.turn.isHeldByCurrentThread()) model.turn.unlock();
        }
        if (result == null) {
            for (int k = 0; k < batch.size(); k++) generate(List.of(batch.get(k)), p, batchId + "." + k);
            return;
        }
        try (GenerationResult r = result) {
            Timings t = r.timings();
            GenerationSettings s = r.settings();
            for (int i = 0; i < batch.size(); i++) {
                InputRow row = batch.get(i).row;
                ObjectNode timings = JSON.createObjectNode().put("batch_images", batch.size()).put("wait_s", round(waitS))
                        .put("model_load_s", round(loaded.loadSeconds())).put("text_encode_s", round(t.textEncode() / 1e9))
                        .put("denoise_s", round(t.denoise() / 1e9)).put("decode_s", round(t.decode() / 1e9)).put("generate_s", round(generateS));
                ResultRecord rec;
                try {
                    long o0 = System.nanoTime();
                    Outputs.writeImage(r, i, p.out.resolve(Layout.image(row.id)), Outputs.Existing.REPLACE); // a killed run's image had no record
                    timings.put("write_s", round((System.nanoTime() - o0) / 1e9));
                    rec = p.record(row, ResultRecord.OK, null, batchId);
                    rec.path = Layout.image(row.id);
                    rec.settings = s.forImage(i).toJson().toString();
                    rec.timings = timings.toString();
                    rec.write(p.out.resolve(Layout.RECORDS));
                } catch (RuntimeException e) {
                    p.fail(row, e, batchId, timings.toString());
                    continue;
                }
                p.records.add(rec);
                p.made++;
                images.add(1);
            }
        }
        LOG.info(String.format(Locale.ROOT, "partition %d batch %s: %d images of %dx%d, %d steps in %.2f s (waited %.2f s for the model)", p.index, batchId,
                batch.size(), batch.get(0).settings.width(), batch.get(0).settings.height(), batch.get(0).settings.steps(), generateS, waitS));
    }

    private static double round(double seconds) {
        return Math.round(seconds * 1e4) / 1e4;
    }

    /** The state of one partition's task. */
    private final class Partition {
        final int index;
        final String executor;
        final String device;
        final Path out = Path.of(config.out());
        final List<ResultRecord> records = new ArrayList<>();
        int batches, made, failedRows, skipped;
        private ExecutorPipelines.Shared model;

        Partition(int index, String executor, String device) {
            this.index = index;
            this.executor = executor;
            this.device = device;
        }

        ExecutorPipelines.Shared model() {
            if (model == null) model = ExecutorPipelines.get(config, device);
            return model;
        }

        ResultRecord record(InputRow row, String status, String error, String batchId) {
            ResultRecord r = new ResultRecord();
            r.row = row.index;
            r.id = row.id;
            r.status = status;
            r.error = error;
            r.prompt = row.values.get(Columns.PROMPT);
            r.seed = row.values.get(Columns.SEED);
            r.executor = executor;
            r.partition = index;
            r.batch = batchId;
            r.run = config.run();
            r.finishedAt = Instant.now().toString();
            return r;
        }

        /** Records the row as failed (and its record file), or stops the task when the job fails fast. */
        void fail(InputRow row, Throwable e, String batchId, String timings) {
            String message = message(e);
            ResultRecord r = record(row, ResultRecord.FAILED, message, batchId);
            r.timings = timings;
            try {
                r.write(out.resolve(Layout.RECORDS));
            } catch (RuntimeException io) {
                LOG.warn("row {} (id {}): {}", row.index, row.id, io.getMessage());
            }
            records.add(r);
            failedRows++;
            failed.add(1);
            LOG.warn("row {} (id {}) failed: {}", row.index, row.id, message);
            if (config.failFast()) throw new RowFailedException("row " + row.index + " (id " + row.id + ") failed: " + message, e);
        }
    }

    static String message(Throwable e) {
        String m = e.getMessage();
        if (m == null || m.isBlank()) return e.getClass().getSimpleName();
        return e instanceof IllegalArgumentException || e instanceof IllegalStateException || e instanceof java.io.UncheckedIOException
                ? m : e.getClass().getSimpleName() + ": " + m;
    }

    /** The executor's id and host, e.g. {@code driver@host} in local mode. */
    static String executorName() {
        SparkEnv env = SparkEnv.get();
        String id = env == null ? "local" : env.executorId();
        String host;
        try {
            host = env == null ? java.net.InetAddress.getLocalHost().getHostName() : env.blockManager().blockManagerId().host();
        } catch (Exception e) {
            host = "?";
        }
        return id + "@" + host;
    }

    /** The device of this task: {@code auto} takes the GPU Spark assigned to the task (cuda:address), else the CPU. */
    static String device(String mode, TaskContext tc) {
        String gpu = null;
        if (tc != null) {
            ResourceInformation r = tc.resourcesJMap().get("gpu");
            if (r != null && r.addresses().length > 0) gpu = r.addresses()[0];
        }
        return switch (mode) {
            case "auto" -> gpu == null ? "cpu" : "cuda:" + gpu;
            case "cuda" -> "cuda:" + (gpu == null ? "0" : gpu);
            default -> mode;
        };
    }
}
