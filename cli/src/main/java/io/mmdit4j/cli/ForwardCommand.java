package io.mmdit4j.cli;

import io.mmdit4j.flux.FluxConfig;
import io.mmdit4j.flux.FluxInputs;
import io.mmdit4j.flux.FluxParameters;
import io.mmdit4j.flux.FluxTransformer;
import io.mmdit4j.guidance.GuidanceTerm;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.guidance.StepWindow;
import io.mmdit4j.io.TransformerFiles;
import io.mmdit4j.models.ModelRegistry;
import io.mmdit4j.nn.Rope;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.concurrent.Callable;

import static org.bytedeco.pytorch.global.torch.createCPUGenerator;
import static org.bytedeco.pytorch.global.torch.equal;
import static org.bytedeco.pytorch.global.torch.randn;

/**
 * {@code mmdit forward}: one FLUX transformer forward on seeded random inputs, plain and with modulation
 * guidance, with timings and how much the guidance moved the output. The guidance direction comes from
 * two random pooled vectors (text encoders arrive with the text-conditioning work).
 */
@Command(name = "forward", mixinStandardHelpOptions = true,
        description = "Run the FLUX transformer on seeded random inputs, plain and guided, and summarise the difference.")
final class ForwardCommand implements Callable<Integer> {
    @Option(names = "--model", defaultValue = "flux-tiny-demo", description = "transformer folder, BFL file, or model name from models/ (default: ${DEFAULT-VALUE})")
    String model;

    @Option(names = "--random", description = "instead of --model: a random model (seeded by --seed) built from this diffusers config.json")
    Path randomConfig;

    @Option(names = "--device", defaultValue = "cpu", description = "cpu or cuda[:N] (default: ${DEFAULT-VALUE})")
    String device;

    @Option(names = "--dtype", defaultValue = "fp32", description = "compute dtype: fp32 or bf16 (default: ${DEFAULT-VALUE})")
    String dtype;

    @Option(names = "--latent", defaultValue = "16x16", description = "latent grid HxW (image pixels / 8), even numbers (default: ${DEFAULT-VALUE})")
    String latent;

    @Option(names = "--text", defaultValue = "16", description = "text tokens (default: ${DEFAULT-VALUE})")
    int textTokens;

    @Option(names = "--batch", defaultValue = "2", description = "batch rows (default: ${DEFAULT-VALUE})")
    int batch;

    @Option(names = "--seed", defaultValue = "0", description = "seed of the random inputs (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--sigma", defaultValue = "1.0", description = "timestep sigma in [0, 1] (default: ${DEFAULT-VALUE})")
    double sigma;

    @Option(names = "--guidance-scale", defaultValue = "3.5", description = "embedded guidance for dev models (default: ${DEFAULT-VALUE})")
    double guidanceScale;

    @Option(names = "--mg-w", defaultValue = "3.0", description = "modulation guidance weight w (default: ${DEFAULT-VALUE})")
    double w;

    @Option(names = "--mg-layers", defaultValue = "all", description = "layer schedule, e.g. 5-, 2-7, 13-30:3,31-45:1, 20~6, list:0,1,1 (default: ${DEFAULT-VALUE})")
    String layers;

    @Option(names = "--mg-rows", split = ",", description = "per-row weights, e.g. 1,0 guides row 0 only (default: every row)")
    double[] rows;

    @Option(names = "--reps", defaultValue = "3", description = "timed repetitions of each forward (default: ${DEFAULT-VALUE})")
    int reps;

    @picocli.CommandLine.Mixin
    ThreadsOption threads = new ThreadsOption();

    @Option(names = "--single", description = "only load the model and run one plain forward, then print its time and the peak RSS"
            + " against the size of the weight files (the memory check of benchmarks/README.md)")
    boolean single;

    @Option(names = "--save-random", paramLabel = "DIR", description = "with --random: write the random model as a diffusers"
            + " transformer folder (config.json + diffusion_pytorch_model.safetensors in --dtype) and exit; e.g. the 2 GB work-unit"
            + " checkpoint of benchmarks/README.md")
    Path saveRandom;

    @Override
    public Integer call() {
        threads.apply();
        int[] grid = parseGrid(latent);
        if (batch < 1 || textTokens < 1 || reps < 1) throw new IllegalArgumentException("--batch, --text and --reps must be >= 1");
        LayerSchedule schedule = LayerSchedule.parse(layers);
        DType compute = DType.parse(dtype);
        if (saveRandom != null) return writeRandom(compute);
        Path path = randomConfig != null ? randomConfig : ModelRegistry.standard().resolve(model);
        try (FluxTransformer flux = randomConfig != null
                ? FluxTransformer.random(io.mmdit4j.flux.FluxConfig.fromDiffusersConfig(randomConfig), seed, compute)
                : FluxTransformer.load(path, compute, null, io.mmdit4j.runtime.DeviceSpec.parse(device));
             PointerScope scope = new PointerScope()) {
            FluxConfig c = flux.config();
            System.out.printf(Locale.ROOT, "model: %s%n       %s, %.1fM parameters, compute %s%n", path, c,
                    FluxParameters.count(c) / 1e6, compute.torchName());
            FluxInputs in = FluxInputs.random(c, batch, grid[0], grid[1], textTokens, seed, sigma, guidanceScale);
            if (single) return single(flux, in, randomConfig != null ? null : path);
            Tensor txtIds = in.txtIds(), imgIds = in.imgIds();
            TensorOptions f32 = new TensorOptions(ScalarType.Float);
            GeneratorOptional gen = new GeneratorOptional(createCPUGenerator(seed + 1));
            Tensor pos = randn(new long[] {1, c.pooledProjectionDim()}, gen, f32);
            Tensor neg = randn(new long[] {1, c.pooledProjectionDim()}, gen, f32);
            System.out.printf(Locale.ROOT, "inputs: batch %d, %d image tokens (latent %dx%d), %d text tokens, sigma %s, seed %d%n",
                    batch, in.hiddenStates().size(1), grid[0], grid[1], textTokens, sigma, seed);

            try (Rope rope = flux.rope(txtIds, imgIds);
                 ModulationGuidance mg = ModulationGuidance.builder()
                         .add(new GuidanceTerm("random", flux.guidanceDelta(pos, neg), w, schedule, StepWindow.all(), rows)).build();
                 ModulationGuidance zero = ModulationGuidance.builder().term(flux.guidanceDelta(pos, neg), 0.0, schedule).build()) {
                double[] f = schedule.factors(c.totalBlocks());
                long guidedBlocks = Arrays.stream(f).filter(v -> v != 0).count();
                System.out.printf(Locale.ROOT, "guidance: w=%s layers=%s (%d of %d blocks)%s, direction from random pooled vectors%n",
                        w, schedule, guidedBlocks, c.totalBlocks(), rows == null ? "" : " rows=" + Arrays.toString(rows));
                Tensor plain = flux.forward(in, ModulationGuidance.none(), 0, rope, null);
                Tensor guided = flux.forward(in, mg, 0, rope, null);
                double[] plainMs = new double[reps], guidedMs = new double[reps];
                for (int r = 0; r < reps; r++) { // alternate so that both see the same machine state
                    plainMs[r] = BenchCommand.millis(() -> flux.forward(in, ModulationGuidance.none(), 0, rope, null));
                    guidedMs[r] = BenchCommand.millis(() -> flux.forward(in, mg, 0, rope, null));
                }
                double p = BenchCommand.median(plainMs), q = BenchCommand.median(guidedMs);
                System.out.printf(Locale.ROOT, "plain  forward: median %.2f ms%nguided forward: median %.2f ms (guided/plain %.3f)%n", p, q, q / p);
                float[] a = Tensors.toFloats(plain), b = Tensors.toFloats(guided);
                int perRow = a.length / batch;
                StringBuilder change = new StringBuilder();
                for (int r = 0; r < batch; r++) {
                    double num = 0, den = 0;
                    for (int i = r * perRow; i < (r + 1) * perRow; i++) {
                        num += (a[i] - b[i]) * (double) (a[i] - b[i]);
                        den += a[i] * (double) a[i];
                    }
                    change.append(r == 0 ? "" : ", ").append(String.format(Locale.ROOT, "%.4f", Math.sqrt(num / Math.max(den, 1e-30))));
                }
                System.out.println("relative change of the output per row (||guided - plain|| / ||plain||): [" + change + "]");
                boolean identical = equal(plain, flux.forward(in, zero, 0, rope, null));
                System.out.println("w = 0 reproduces the plain output bit for bit: " + identical);
                System.out.println("peak RSS: " + io.mmdit4j.runtime.ProcessMemory.peakRssMb() + " MB");
                plain.close();
                guided.close();
                return identical ? 0 : 1;
            }
        }
    }

    private int writeRandom(DType dtype) {
        if (randomConfig == null) throw new IllegalArgumentException("--save-random needs --random <config.json>");
        FluxConfig c = io.mmdit4j.flux.FluxConfig.fromDiffusersConfig(randomConfig);
        try {
            Files.createDirectories(saveRandom);
            try (PointerScope scope = new PointerScope()) { // the weights are freed once written
                io.mmdit4j.io.SafetensorsWriter.write(saveRandom.resolve("diffusion_pytorch_model.safetensors"),
                        FluxTransformer.randomWeights(c, seed, dtype));
            }
            Files.copy(randomConfig, saveRandom.resolve("config.json"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException("--save-random " + saveRandom + ": " + e.getMessage(), e);
        }
        System.out.printf(Locale.ROOT, "wrote %s: %s, %.1fM parameters in %s, seed %d%n", saveRandom, c,
                FluxParameters.count(c) / 1e6, dtype.torchName(), seed);
        return 0;
    }

    /** One plain forward: its time, and the peak RSS of the whole run (load included) against the weight files. */
    private static int single(FluxTransformer flux, FluxInputs in, Path weights) {
        io.mmdit4j.runtime.DeviceTimer timer = io.mmdit4j.runtime.DeviceTimer.of(flux.device()); // CUDA: events, not launch time
        double ms = timer.time(() -> flux.forward(in).close()) / 1e6;
        long peak = io.mmdit4j.runtime.ProcessMemory.peakRssMb();
        System.out.printf(Locale.ROOT, "one forward: %.1f ms (batch %d, %d image + %d text tokens)%n", ms,
                in.hiddenStates().size(0), in.hiddenStates().size(1), in.encoderHiddenStates().size(1));
        System.out.println("memory profile: " + io.mmdit4j.runtime.MemoryProfile.describe());
        if (weights == null) {
            System.out.println("peak RSS: " + peak + " MB (random in-memory weights)");
        } else {
            Path folder = TransformerFiles.transformerPath(weights);
            double fileMb = weightFileBytes(folder) / 1048576.0;
            System.out.printf(Locale.ROOT, "peak RSS: %d MB = %.3fx the %.0f MB of weight files in %s; %.0f MB above 1.15x the files%n", peak,
                    peak / fileMb, fileMb, folder, peak - 1.15 * fileMb);
        }
        return 0;
    }

    /** The file itself, or the weight files (.safetensors, .gguf) directly in a folder. */
    private static long weightFileBytes(Path path) {
        try {
            if (Files.isRegularFile(path)) return Files.size(path);
            try (var files = Files.list(path)) {
                long sum = 0;
                for (Path f : (Iterable<Path>) files.filter(f -> f.toString().endsWith(".safetensors") || f.toString().endsWith(".gguf"))::iterator) sum += Files.size(f);
                return sum;
            }
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    static int[] parseGrid(String text) {
        String[] p = text.toLowerCase(Locale.ROOT).split("x");
        try {
            if (p.length == 2) {
                int h = Integer.parseInt(p[0].trim()), w = Integer.parseInt(p[1].trim());
                if (h > 0 && w > 0 && h % 2 == 0 && w % 2 == 0) return new int[] {h, w};
            }
        } catch (NumberFormatException ignored) {
            // fall through to the error below
        }
        throw new IllegalArgumentException("--latent " + text + ": expected HxW with positive even numbers, e.g. 16x16");
    }
}
