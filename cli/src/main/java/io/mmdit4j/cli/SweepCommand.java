package io.mmdit4j.cli;

import io.mmdit4j.models.ModelRegistry;
import io.mmdit4j.research.StatsPlots;
import io.mmdit4j.research.SweepAnalyzer;
import io.mmdit4j.research.SweepDirection;
import io.mmdit4j.research.SweepRunner;
import io.mmdit4j.research.SweepSettings;
import io.mmdit4j.research.SweepSpec;
import io.mmdit4j.research.Sweeps;
import io.mmdit4j.runtime.DeviceSpec;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * {@code mmdit sweep}: a guidance sweep (prompts × seeds × w × layer schedules × step windows × directions × norm controls)
 * from a JSON spec and/or repeatable flags (a flag replaces that axis of the spec); resumable; writes images, results,
 * modulation statistics and contact sheets (see {@link SweepRunner}).
 */
@Command(name = "sweep", mixinStandardHelpOptions = true, description = "Run a modulation-guidance sweep and draw contact sheets (resumable).")
final class SweepCommand implements Callable<Integer> {
    @Option(names = "--spec", description = "sweep spec JSON (see examples/sweep-demo.json)")
    Path spec;
    @Option(names = "--out", description = "output folder (default: sweep-out)", defaultValue = "sweep-out")
    Path out;
    @Option(names = "--model", description = "a diffusers FLUX folder or a model name (default: the spec's, else flux-tiny-demo)")
    String model;
    @Option(names = "--prompt", description = "a prompt (repeatable)")
    List<String> prompts = new ArrayList<>();
    @Option(names = "--seed", description = "a seed (repeatable)")
    List<Long> seeds = new ArrayList<>();
    @Option(names = "--w", description = "a guidance weight (repeatable); the w=0 reference is added automatically")
    List<Double> w = new ArrayList<>();
    @Option(names = "--layers", description = "a layer schedule, e.g. 5- or 13-30:3,31-45:1 (repeatable)")
    List<String> layers = new ArrayList<>();
    @Option(names = "--step-window", description = "a step window, e.g. all or 0-1 (repeatable)")
    List<String> stepWindows = new ArrayList<>();
    @Option(names = "--mg-preset", description = "a direction preset: complexity, aesthetics, hands, counting (repeatable)")
    List<String> presets = new ArrayList<>();
    @Option(names = "--mg-pos", description = "positive prompt p+ of a custom direction (repeatable, paired with --mg-neg)")
    List<String> mgPos = new ArrayList<>();
    @Option(names = "--mg-neg", description = "negative prompt p- of a custom direction (repeatable)")
    List<String> mgNeg = new ArrayList<>();
    @Option(names = "--mg-norm", description = "norm control: none, keep-temb-norm, match-guided-norm (repeatable)")
    List<String> norms = new ArrayList<>();
    @Option(names = "--rows", description = "contact-sheet rows axis: prompt, seed, w, layers, steps, direction, norm (default: w)")
    String rows;
    @Option(names = "--cols", description = "contact-sheet columns axis (default: layers)")
    String cols;
    @Option(names = "--width", description = "width in pixels (default: the spec's, else the model's)")
    Integer width;
    @Option(names = "--height", description = "height in pixels")
    Integer height;
    @Option(names = "--steps", description = "denoising steps")
    Integer steps;
    @Option(names = "--guidance", description = "embedded guidance scale (dev models)")
    Double guidanceScale;
    @Option(names = "--max-sequence-length", description = "T5 tokens")
    Integer maxSequenceLength;
    @Option(names = "--dtype", description = "fp32 or bf16")
    String dtype;
    @Option(names = "--batch", description = "images per transformer batch (default: the spec's, else 4)")
    Integer batch;
    @Option(names = "--no-stats", description = "skip the modulation statistics")
    boolean noStats;
    @Option(names = "--analyze", description = "read every image back into results columns: shapes (objects found, colour, shape, size, background, mean area; for shapes-world models) or none (default: the spec's, else none)")
    String analyze;
    @Option(names = "--plot", description = "also plot the statistics of every cell into OUT/plots/")
    boolean plot;
    @Option(names = "--device", defaultValue = "cpu", description = "cpu or cuda[:N] (default: ${DEFAULT-VALUE})")
    String device;
    @picocli.CommandLine.Mixin
    ThreadsOption threads = new ThreadsOption();

    @Override
    public Integer call() throws IOException {
        threads.apply();
        SweepSpec.Builder b = spec != null ? SweepSpec.read(spec).toBuilder() : new SweepSpec.Builder();
        if (model != null) b.model = model;
        if (!prompts.isEmpty()) b.prompts = prompts;
        if (!seeds.isEmpty()) b.seeds = seeds;
        if (!w.isEmpty()) b.w = w;
        if (!layers.isEmpty()) b.layers = layers;
        if (!stepWindows.isEmpty()) b.stepWindows = stepWindows;
        if (mgPos.size() != mgNeg.size()) throw new IllegalArgumentException("--mg-pos and --mg-neg must come in pairs (" + mgPos.size() + " vs " + mgNeg.size() + ")");
        if (!presets.isEmpty() || !mgPos.isEmpty()) {
            b.directions = new ArrayList<>();
            for (String p : presets) b.directions.add(SweepDirection.preset(p));
            for (int i = 0; i < mgPos.size(); i++) b.directions.add(new SweepDirection("custom" + i, mgPos.get(i), mgNeg.get(i)));
        }
        if (!norms.isEmpty()) b.normControl = norms;
        if (rows != null) b.rows = rows;
        if (cols != null) b.cols = cols;
        if (width != null) b.width = width;
        if (height != null) b.height = height;
        if (steps != null) b.steps = steps;
        if (guidanceScale != null) b.guidanceScale = guidanceScale;
        if (maxSequenceLength != null) b.maxSequenceLength = maxSequenceLength;
        if (dtype != null) b.dtype = dtype;
        if (batch != null) b.batch = batch;
        if (noStats) b.stats = false;
        if (analyze != null) b.analyze = SweepAnalyzer.parse(analyze);
        SweepSpec s = b.build();
        ModelRegistry registry = ModelRegistry.standard();
        SweepSettings settings = Sweeps.settings(s, registry);
        DeviceSpec dev = DeviceSpec.parse(device);
        long t0 = System.nanoTime();
        SweepRunner.Summary sum;
        try (Progress bar = Progress.of("sweep", " cells")) {
            sum = new SweepRunner(s, settings, out, line -> Verbosity.note("%s", line)).progress((done, total) -> bar.update(done, total, null))
                    .run(Sweeps.loader(settings, registry, dev));
        }
        Verbosity.note("sweep: %d cells made, %d already finished, %d transformer forwards in %d batches, %.1f s",
                sum.generated(), sum.skipped(), sum.forwards(), sum.batches(), (System.nanoTime() - t0) / 1e9);
        System.out.println(out.resolve("results.csv"));
        sum.sheets().forEach(System.out::println);
        if (plot) {
            if (!s.stats()) throw new IllegalArgumentException("--plot needs the statistics (drop --no-stats)");
            StatsPlots.plotAll(out.resolve("stats.csv"), out.resolve("plots"), List.of(), List.of()).forEach(System.out::println);
        }
        return 0;
    }
}
