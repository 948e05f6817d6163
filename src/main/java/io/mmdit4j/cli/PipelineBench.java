package io.mmdit4j.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.mmdit4j.flux.FluxPipeline;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.guidance.Presets;
import io.mmdit4j.models.ModelDescriptor;
import io.mmdit4j.models.ModelRegistry;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.ProcessMemory;
import io.mmdit4j.runtime.Torch;
import io.mmdit4j.sampling.Timings;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * {@code mmdit bench --pipeline}: whole FLUX generations on a model folder, plain and guided alternated, with the
 * time of each phase (text encoding, every denoising step, VAE decode) as one JSON line.
 */
final class PipelineBench {
    private PipelineBench() {}

    record Settings(String model, int width, int height, int steps, int batch, int maxSequenceLength, DType dtype,
                    int warmup, int reps, double w, LayerSchedule layers, String prompt) {}

    static void run(Settings s) {
        // the requests validate size, steps and guidance before the model loads
        List<String> prompts = java.util.Collections.nCopies(s.batch(), s.prompt());
        FluxPipeline.Request plain = request(s, prompts, List.of());
        FluxPipeline.Request guided = request(s, prompts, List.of(new FluxPipeline.Direction("aesthetics",
                Presets.AESTHETICS.pos, Presets.AESTHETICS.neg, s.w(), s.layers(), null, null)));
        Path folder = ModelRegistry.standard().resolve(s.model());
        try (FluxPipeline pipe = FluxPipeline.load(folder, s.dtype(), DeviceSpec.CPU)) {
            for (int i = 0; i < s.warmup(); i++) {
                pipe.generate(plain).close();
                pipe.generate(guided).close();
            }
            long rssBefore = ProcessMemory.rssMb();
            List<Timings> p = new ArrayList<>(), g = new ArrayList<>();
            for (int i = 0; i < s.reps(); i++) {
                try (FluxPipeline.Result r = pipe.generate(plain)) { p.add(r.timings()); }
                try (FluxPipeline.Result r = pipe.generate(guided)) { g.add(r.timings()); }
            }
            ObjectNode j = new ObjectMapper().createObjectNode();
            j.put("model", s.model()).put("size", s.width() + "x" + s.height()).put("steps", s.steps()).put("batch", s.batch());
            j.put("max_sequence_length", s.maxSequenceLength()).put("dtype", s.dtype().torchName()).put("threads", Torch.threads());
            j.put("reps", s.reps());
            put(j, "plain", p);
            put(j, "guided", g);
            j.put("guided_over_plain_total", round4(medianTotal(g) / medianTotal(p)));
            j.put("guided_over_plain_step", round4(median(stepsMs(g)) / median(stepsMs(p))));
            j.put("rss_mb_before_timed", rssBefore).put("rss_mb_after_timed", ProcessMemory.rssMb()).put("peak_rss_mb", ProcessMemory.peakRssMb());
            System.out.println(j);
        }
    }

    private static FluxPipeline.Request request(Settings s, List<String> prompts, List<FluxPipeline.Direction> directions) {
        return new FluxPipeline.Request(prompts, 1, s.width(), s.height(), s.steps(), 3.5, new long[] {0},
                s.maxSequenceLength(), directions, null);
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
