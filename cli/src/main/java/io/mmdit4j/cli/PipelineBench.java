package io.mmdit4j.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.mmdit4j.guidance.Direction;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.pipeline.GenerationRequest;
import io.mmdit4j.pipeline.GenerationResult;
import io.mmdit4j.pipeline.GenerationSettings;
import io.mmdit4j.pipeline.LoadOptions;
import io.mmdit4j.pipeline.Pipeline;
import io.mmdit4j.pipeline.Pipelines;
import io.mmdit4j.pipeline.PreparedModel;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.ProcessMemory;
import io.mmdit4j.runtime.Torch;
import io.mmdit4j.sampling.StepListener;
import io.mmdit4j.sampling.Timings;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/**
 * {@code mmdit bench --pipeline}: whole generations of any model family, plain and guided alternated, with the time of
 * each phase (text encoding, every denoising step, decode) as one JSON line. Runs through the same API as
 * {@code generate} ({@link Pipelines}).
 */
final class PipelineBench {
    private PipelineBench() {}

    record Settings(String model, int width, int height, int steps, int batch, int maxSequenceLength, DType dtype,
                    int warmup, int reps, double w, LayerSchedule layers, String prompt) {}

    static void run(Settings s) {
        GenerationRequest.checkSize(s.width(), s.height()); // before the model is even looked up
        PreparedModel prepared = Pipelines.prepare(s.model(), LoadOptions.builder().dtype(s.dtype()).build());
        GenerationRequest.Builder b = GenerationRequest.builder().prompts(Collections.nCopies(s.batch(), s.prompt())).size(s.width(), s.height())
                .steps(s.steps()).seed(0).maxSequenceLength(s.maxSequenceLength());
        // both requests are checked (size, steps, guidance layers) before the model loads
        GenerationSettings plain = prepared.resolve(b.build());
        GenerationSettings guided = prepared.resolve(b.guide(Direction.preset(prepared.family().video() ? "video-aesthetics" : "aesthetics")
                .w(s.w()).layers(s.layers())).build());
        try (Pipeline pipe = prepared.load()) {
            for (int i = 0; i < s.warmup(); i++) {
                pipe.generate(plain, StepListener.NONE, null).close();
                pipe.generate(guided, StepListener.NONE, null).close();
            }
            long rssBefore = ProcessMemory.rssMb();
            List<Timings> p = new ArrayList<>(), g = new ArrayList<>();
            for (int i = 0; i < s.reps(); i++) {
                try (GenerationResult r = pipe.generate(plain, StepListener.NONE, null)) { p.add(r.timings()); }
                try (GenerationResult r = pipe.generate(guided, StepListener.NONE, null)) { g.add(r.timings()); }
            }
            ObjectNode j = new ObjectMapper().createObjectNode();
            j.put("model", s.model()).put("family", prepared.family().name()).put("size", s.width() + "x" + s.height()).put("steps", s.steps())
                    .put("batch", s.batch());
            j.put("max_sequence_length", s.maxSequenceLength()).put("dtype", pipe.dtype().torchName()).put("threads", Torch.threads());
            j.put("reps", s.reps());
            put(j, "plain", p);
            put(j, "guided", g);
            j.put("guided_over_plain_total", round4(medianTotal(g) / medianTotal(p)));
            j.put("guided_over_plain_step", round4(median(stepsMs(g)) / median(stepsMs(p))));
            j.put("rss_mb_before_timed", rssBefore).put("rss_mb_after_timed", ProcessMemory.rssMb()).put("peak_rss_mb", ProcessMemory.peakRssMb());
            System.out.println(j);
        }
    }

    private static void put(ObjectNode j, String kind, List<Timings> runs) {
        j.put(kind + "_text_encode_ms", round(median(runs.stream().mapToDouble(t -> t.textEncode() / 1e6).toArray())));
        double[] steps = stepsMs(runs);
        j.put(kind + "_step_ms_median", round(median(steps)));
        j.put(kind + "_step_ms_min", round(Arrays.stream(steps).min().orElse(Double.NaN)));
        j.put(kind + "_step_ms_max", round(Arrays.stream(steps).max().orElse(Double.NaN)));
        j.put(kind + "_decode_ms", round(median(runs.stream().mapToDouble(t -> t.decode() / 1e6).toArray())));
        j.put(kind + "_total_ms", round(medianTotal(runs)));
    }

    /** Every denoising step of every run, in ms. */
    private static double[] stepsMs(List<Timings> runs) {
        return runs.stream().flatMapToLong(t -> Arrays.stream(t.steps())).mapToDouble(n -> n / 1e6).toArray();
    }

    private static double medianTotal(List<Timings> runs) {
        return median(runs.stream().mapToDouble(t -> (t.textEncode() + t.denoise() + t.decode()) / 1e6).toArray());
    }

    private static double median(double[] v) {
        return BenchCommand.median(v);
    }

    private static double round(double v) { return Math.round(v * 100) / 100.0; }
    private static double round4(double v) { return Math.round(v * 10000) / 10000.0; }
}
