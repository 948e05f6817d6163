package io.mmdit4j.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.mmdit4j.flux.FluxConfig;
import io.mmdit4j.flux.FluxInputs;
import io.mmdit4j.flux.FluxTransformer;
import io.mmdit4j.guidance.GuidanceTerm;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.guidance.StepWindow;
import io.mmdit4j.models.ModelRegistry;
import io.mmdit4j.nn.Rope;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.GemmFloor;
import io.mmdit4j.runtime.OpCounter;
import io.mmdit4j.runtime.ProcessMemory;
import io.mmdit4j.runtime.Torch;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.Callable;

import static org.bytedeco.pytorch.global.torch.createCPUGenerator;
import static org.bytedeco.pytorch.global.torch.randn;

/**
 * {@code mmdit bench}: plain and guided transformer forwards, alternated in one JVM, against the GEMM floor of
 * the same forward; one JSON line of results. Ratios within one run are the numbers to compare.
 */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Time plain vs guided FLUX forwards and the forward's own GEMM floor; prints one JSON line.")
final class BenchCommand implements Callable<Integer> {
    @Option(names = "--model", description = "transformer folder, BFL file or model name (or use --random)")
    String model;

    @Option(names = "--random", description = "a random model (seeded) built from this diffusers config.json")
    Path randomConfig;

    @Option(names = "--latent", defaultValue = "32x32", description = "latent grid HxW (default: ${DEFAULT-VALUE})")
    String latent;

    @Option(names = "--text", defaultValue = "128", description = "text tokens (default: ${DEFAULT-VALUE})")
    int text;

    @Option(names = "--batch", defaultValue = "1", description = "batch rows (default: ${DEFAULT-VALUE})")
    int batch;

    @Option(names = "--dtype", defaultValue = "fp32", description = "fp32 or bf16 (default: ${DEFAULT-VALUE})")
    String dtype;

    @picocli.CommandLine.Mixin
    ThreadsOption threads = new ThreadsOption();

    @Option(names = "--warmup", defaultValue = "2", description = "untimed forwards of each kind (default: ${DEFAULT-VALUE})")
    int warmup;

    @Option(names = "--reps", defaultValue = "10", description = "timed forwards of each kind (default: ${DEFAULT-VALUE})")
    int reps;

    @Option(names = "--floor-reps", defaultValue = "3", description = "runs of each GEMM for the floor, best kept (default: ${DEFAULT-VALUE})")
    int floorReps;

    @Option(names = "--seed", defaultValue = "0", description = "seed of weights and inputs (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--mg-w", defaultValue = "3.0", description = "modulation guidance weight (default: ${DEFAULT-VALUE})")
    double w;

    @Option(names = "--mg-layers", defaultValue = "all", description = "layer schedule of the guided forward (default: ${DEFAULT-VALUE})")
    String layers;

    @Option(names = "--compare", description = "a second transformer (e.g. the same model quantized) whose plain forwards alternate with the "
            + "first's in this JVM: compare_ms_median and compare_over_plain (the same inputs, dtype and threads)")
    String compare;

    @Option(names = "--pipeline", description = "time whole generations of a model (--model, any family): text encoding, each denoising step, decode")
    boolean pipeline;

    @Option(names = "--size", defaultValue = "256x256", description = "--pipeline: image size WxH (default: ${DEFAULT-VALUE})")
    String size;

    @Option(names = "--steps", defaultValue = "4", description = "--pipeline: denoising steps (default: ${DEFAULT-VALUE})")
    int steps;

    @Option(names = "--prompt", defaultValue = "a lighthouse on a cliff at dusk, oil painting", description = "--pipeline: the prompt")
    String prompt;

    @Override
    public Integer call() throws IOException {
        threads.apply();
        if ((model == null) == (randomConfig == null)) throw new IllegalArgumentException("give exactly one of --model and --random");
        if (reps < 1 || warmup < 0) throw new IllegalArgumentException("--reps must be >= 1 and --warmup >= 0");
        if (pipeline) {
            if (model == null) throw new IllegalArgumentException("--pipeline needs --model (a model folder or name)");
            if (steps < 1 || batch < 1) throw new IllegalArgumentException("--steps and --batch must be >= 1");
            String[] wh = size.toLowerCase(java.util.Locale.ROOT).split("x");
            int width, height;
            try {
                width = Integer.parseInt(wh[0].trim());
                height = Integer.parseInt(wh[1].trim());
            } catch (RuntimeException e) {
                throw new IllegalArgumentException("--size " + size + ": expected WxH, e.g. 256x256");
            }
            PipelineBench.run(new PipelineBench.Settings(model, width, height, steps, batch, text, DType.parse(dtype), warmup, reps, w,
                    LayerSchedule.parse(layers), prompt));
            return 0;
        }
        if (batch < 1 || text < 1) throw new IllegalArgumentException("--batch and --text must be >= 1");
        int[] grid = ForwardCommand.parseGrid(latent);
        DType compute = DType.parse(dtype);
        LayerSchedule schedule = LayerSchedule.parse(layers);
        try (FluxTransformer flux = randomConfig != null
                ? FluxTransformer.random(FluxConfig.fromDiffusersConfig(randomConfig), seed, compute)
                : FluxTransformer.load(ModelRegistry.standard().resolve(model), compute);
             PointerScope scope = new PointerScope()) {
            FluxConfig c = flux.config();
            FluxInputs in = FluxInputs.random(c, batch, grid[0], grid[1], text, seed, 1.0, 3.5);
            GeneratorOptional gen = new GeneratorOptional(createCPUGenerator(seed + 1));
            TensorOptions f32 = new TensorOptions(ScalarType.Float);
            Tensor pos = randn(new long[] {1, c.pooledProjectionDim()}, gen, f32), neg = randn(new long[] {1, c.pooledProjectionDim()}, gen, f32);
            try (Rope rope = flux.rope(in.txtIds(), in.imgIds());
                 ModulationGuidance g = ModulationGuidance.builder()
                         .add(new GuidanceTerm("bench", flux.guidanceDelta(pos, neg), w, schedule, StepWindow.all(), null)).build()) {
                for (int i = 0; i < warmup; i++) {
                    flux.forward(in, ModulationGuidance.none(), 0, rope, null).close();
                    flux.forward(in, g, 0, rope, null).close();
                }
                FluxTransformer other = compare == null ? null : FluxTransformer.load(ModelRegistry.standard().resolve(compare), compute);
                double[] compared = new double[reps];
                if (other != null) {
                    if (!other.config().equals(c)) throw new IllegalArgumentException("--compare " + compare + ": another configuration (" + other.config() + ")");
                    for (int i = 0; i < warmup; i++) other.forward(in, ModulationGuidance.none(), 0, rope, null).close();
                }
                io.mmdit4j.runtime.DeviceTimer timer = io.mmdit4j.runtime.DeviceTimer.of(flux.device()); // wall on the CPU
                long rssBefore = ProcessMemory.rssMb();
                double[] plain = new double[reps], guided = new double[reps];
                for (int i = 0; i < reps; i++) {
                    plain[i] = millis(timer, () -> flux.forward(in, ModulationGuidance.none(), 0, rope, null));
                    if (other != null) compared[i] = millis(timer, () -> other.forward(in, ModulationGuidance.none(), 0, rope, null));
                    guided[i] = millis(timer, () -> flux.forward(in, g, 0, rope, null));
                }
                long rssAfter = ProcessMemory.rssMb();
                if (other != null) other.close();
                OpCounter.Recording ops;
                try (OpCounter.Recording r = OpCounter.record()) {
                    flux.forward(in, ModulationGuidance.none(), 0, rope, null).close();
                    ops = r;
                }
                // where the time of a forward goes: its linears and attention kernels timed in place
                int profiled = Math.min(reps, 5);
                double[] inLinears = new double[profiled], inAttention = new double[profiled], whole = new double[profiled];
                for (int i = 0; i < profiled; i++) {
                    try (OpCounter.Recording r = OpCounter.record(true)) {
                        whole[i] = millis(timer, () -> flux.forward(in, ModulationGuidance.none(), 0, rope, null));
                        inLinears[i] = r.linearNanos() / 1e6;
                        inAttention[i] = r.attentionNanos() / 1e6;
                    }
                }
                GemmFloor.Split floor = GemmFloor.split(ops, floorReps, flux.device());
                double floorMs = floor.seconds() * 1e3;
                double plainMedian = median(plain), guidedMedian = median(guided);
                ObjectNode j = new ObjectMapper().createObjectNode();
                j.put("model", randomConfig != null ? "random:" + randomConfig : model);
                j.put("dim", c.innerDim()).put("double_blocks", c.numLayers()).put("single_blocks", c.numSingleLayers());
                j.put("latent", latent).put("image_tokens", in.hiddenStates().size(1)).put("text_tokens", text).put("batch", batch);
                j.put("dtype", compute.torchName()).put("threads", Torch.threads()).put("reps", reps);
                j.put("plain_ms_median", round(plainMedian)).put("plain_ms_min", round(min(plain))).put("plain_ms_max", round(max(plain)));
                j.put("guided_ms_median", round(guidedMedian)).put("guided_ms_min", round(min(guided))).put("guided_ms_max", round(max(guided)));
                j.put("guided_over_plain", round4(guidedMedian / plainMedian));
                if (compare != null) {
                    j.put("compare", compare).put("compare_ms_median", round(median(compared))).put("compare_ms_min", round(min(compared)))
                            .put("compare_ms_max", round(max(compared))).put("compare_over_plain", round4(median(compared) / plainMedian));
                }
                j.put("gflop", round(ops.totalFlops() / 1e9)).put("gflops_per_s", round(ops.totalFlops() / 1e9 / (plainMedian / 1e3)));
                j.put("gemm_floor_ms", round(floorMs)).put("forward_over_floor", round4(plainMedian / floorMs));
                j.put("floor_linear_ms", round(floor.linearSeconds() * 1e3)).put("floor_attention_ms", round(floor.attentionSeconds() * 1e3));
                j.put("profiled_forward_ms", round(median(whole))).put("in_linear_ms", round(median(inLinears)))
                        .put("in_attention_ms", round(median(inAttention)))
                        .put("in_other_ms", round(median(whole) - median(inLinears) - median(inAttention)));
                j.put("rss_mb_before_timed", rssBefore).put("rss_mb_after_timed", rssAfter)
                        .put("rss_growth_percent", round(100.0 * (rssAfter - rssBefore) / rssBefore));
                j.put("peak_rss_mb", ProcessMemory.peakRssMb()).put("memory_profile", io.mmdit4j.runtime.MemoryProfile.name());
                j.put("clock", timer.clock()); // wall, or cuda-events for a CUDA model
                System.out.println(j);
            }
        }
        return 0;
    }

    /** Wall time of one call in ms; the returned tensor is closed. */
    static double millis(java.util.function.Supplier<Tensor> forward) {
        return millis(io.mmdit4j.runtime.DeviceTimer.WALL, forward);
    }

    /** The time of one call in ms on {@code timer}'s clock (CUDA events for a CUDA model); the returned tensor is closed. */
    static double millis(io.mmdit4j.runtime.DeviceTimer timer, java.util.function.Supplier<Tensor> forward) {
        return timer.time(() -> forward.get().close()) / 1e6;
    }

    static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }

    private static double min(double[] v) { return Arrays.stream(v).min().orElse(Double.NaN); }
    private static double max(double[] v) { return Arrays.stream(v).max().orElse(Double.NaN); }
    private static double round(double v) { return Math.round(v * 100) / 100.0; }
    private static double round4(double v) { return Math.round(v * 10000) / 10000.0; }

}
