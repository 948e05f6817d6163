package io.mmdit4j.cli;

import io.mmdit4j.flux.FluxConfig;
import io.mmdit4j.flux.FluxMemory;
import io.mmdit4j.nn.Rope;
import io.mmdit4j.pipeline.GenerationRequest;
import io.mmdit4j.pipeline.InvalidRequestException;
import io.mmdit4j.runtime.SystemMemory;
import io.mmdit4j.vae.VaeConfig;
import io.mmdit4j.flux.FluxInputs;
import io.mmdit4j.flux.FluxParameters;
import io.mmdit4j.flux.FluxTransformer;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.io.FileErrors;
import io.mmdit4j.models.ModelDescriptor;
import io.mmdit4j.models.ModelRegistry;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.GpuTimeModel;
import io.mmdit4j.runtime.OpCounter;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.DeviceOptional;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.concurrent.Callable;

import static org.bytedeco.pytorch.global.torch.empty;
import static org.bytedeco.pytorch.global.torch.zeros;

/**
 * {@code mmdit inspect}: a real-size dry run. The transformer runs on meta tensors (shapes only, no weight or
 * activation memory), which checks every shape of the configuration, and the command reports parameters,
 * weight bytes per dtype, an activation-memory estimate and the FLOPs of one denoising step.
 */
@Command(name = "inspect", mixinStandardHelpOptions = true,
        description = "Show how a PNG or video was made, or dry-run a transformer at its real size with meta tensors: shapes, parameters, memory and FLOPs per step.")
final class InspectCommand implements Callable<Integer> {
    @picocli.CommandLine.Parameters(arity = "0..1", paramLabel = "IMAGE.png", description = "a generated PNG, or a video (.mp4, .webm, .gif): print how it was made")
    Path image;

    @Option(names = "--config",
            description = "a model name from models/ (flux1-dev, flux1-schnell) or sd3.5-large, sd3.5-medium, sd3-medium, hunyuan-video, hidream-i1-full (-dev, -fast), cosmos-predict2-2b, a diffusers config.json, or a checkpoint (headers only)")
    String config;

    @Option(names = "--size", description = "image size WxH in pixels (default: 1024x1024; COSMOS: 768x768)")
    String size;

    @Option(names = "--text", description = "text tokens (default: the model's max_sequence_length, else 512)")
    Integer text;

    @Option(names = "--batch", defaultValue = "1", description = "batch rows (default: ${DEFAULT-VALUE})")
    int batch;

    @Option(names = "--frames", description = "video frames for video models (4k+1; default: 129 for HunyuanVideo)")
    Integer frames;

    @Option(names = "--dtype", defaultValue = "bf16", description = "compute dtype for activations (default: ${DEFAULT-VALUE})")
    String dtype;

    @Option(names = "--gpu", description = "FLUX: also print a per-step time model for this GPU (h100, h200): GEMM and attention FLOPs, "
            + "elementwise bytes, and the host's dispatch time measured on meta, next to published anchors (a model, not a measurement)")
    String gpu;
    @Option(names = "--json", description = "with --gpu: print the time model as one JSON line")
    boolean json;
    @Option(names = "--host-reps", defaultValue = "20", description = "with --gpu: timed meta forwards for the host time per step (median; default: ${DEFAULT-VALUE})")
    int hostReps;

    @Option(names = "--quant", description = "dry-run the model quantized as the quantize command writes it: q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q4_k_m, "
            + "q5_k, q5_k_m, q6_k, nf4, fp4, fp8, fp8-scaled, fp8-e5m2 (every dequantization op runs on meta tensors)")
    String quant;

    @Option(names = "--budget", description = "a device's memory (e.g. 24GB, 16GiB): print which offloading plan fits it")
    String budget;

    @Option(names = "--ignore-memory-check", description = "dry-run even when the run's own host tables (RoPE) exceed the memory available")
    boolean ignoreMemoryCheck;

    @Override
    public Integer call() throws java.io.IOException {
        if (image != null && io.mmdit4j.video.VideoFormat.forName(image) != null) {
            inspectVideo(image);
            return 0;
        }
        if (image != null) {
            printText(io.mmdit4j.image.PngImages.readText(image));
            return 0;
        }
        if (config == null) throw new IllegalArgumentException("give a PNG to inspect, or --config for a dry run");
        DType compute = DType.parse(dtype);
        boolean cosmos = CosmosInspect.handles(config);
        if (size == null) size = cosmos ? "768x768" : "1024x1024";
        int[] wh = parseSize(size);
        int width = wh[0], height = wh[1];
        checkLimits(width, height);
        if ((quant != null || budget != null) && (cosmos || HunyuanVideoInspect.handles(config) || HiDreamInspect.resolve(config) != null
                || Sd3Inspect.resolve(config) != null)) {
            throw new IllegalArgumentException("--quant and --budget: FLUX models only so far (" + config + " is not one); "
                    + "./mmdit quantize writes the other families quantized");
        }
        if (cosmos) {
            if (frames != null) throw new IllegalArgumentException("--frames applies to video models only; " + config + " is an image model");
            CosmosInspect.run(CosmosInspect.resolve(config), compute, width, height, text != null ? text : CosmosInspect.defaultText(config), batch,
                    7.0, System.out);
            return 0;
        }
        if (HunyuanVideoInspect.handles(config)) {
            HunyuanVideoInspect.run(HunyuanVideoInspect.resolve(config), compute, width, height, frames != null ? frames : HunyuanVideoInspect.DEFAULT_FRAMES,
                    text != null ? text : HunyuanVideoInspect.defaultText(config), batch, ignoreMemoryCheck, System.out);
            return 0;
        }
        if (frames != null) throw new IllegalArgumentException("--frames applies to video models only; " + config + " is an image model");
        HiDreamInspect.Model hidream = HiDreamInspect.resolve(config); // HiDream-I1 names, configs and folders
        if (hidream != null) {
            HiDreamInspect.report(hidream, width, height, text, batch, compute, System.out);
            return 0;
        }
        io.mmdit4j.sd3.Sd3Config sd3 = Sd3Inspect.resolve(config); // SD3 / SD3.5 names, configs and checkpoints
        if (sd3 != null) {
            Sd3Inspect.report(sd3, width, height, text, batch, compute);
            return 0;
        }
        FluxConfig c = resolveConfig();
        int textTokens = text != null ? text : defaultText();
        int rows = height / 16, cols = width / 16, imageTokens = rows * cols;
        checkDryRunMemory(Rope.buildBytes((long) textTokens + imageTokens, c.axesDimsRope()), ignoreMemoryCheck);
        io.mmdit4j.io.quant.CheckpointQuantizer.Target q = quant == null ? null : io.mmdit4j.io.quant.CheckpointQuantizer.Target.parse(quant);
        long budgetBytes = budget == null ? -1 : DevicePlan.parseBytes(budget);
        try (FluxTransformer model = q == null ? FluxTransformer.meta(c, compute) : FluxTransformer.meta(c, compute, q); PointerScope scope = new PointerScope();
             Device meta = new Device("meta")) {
            TensorOptions onMeta = new TensorOptions(compute.scalarType()).device(new DeviceOptional(meta));
            FluxInputs in = new FluxInputs(
                    empty(new long[] {batch, imageTokens, c.inChannels()}, onMeta, new MemoryFormatOptional()),
                    empty(new long[] {batch, textTokens, c.jointAttentionDim()}, onMeta, new MemoryFormatOptional()),
                    empty(new long[] {batch, c.pooledProjectionDim()}, onMeta, new MemoryFormatOptional()),
                    empty(new long[] {batch}, onMeta, new MemoryFormatOptional()),
                    c.guidanceEmbeds() ? empty(new long[] {batch}, onMeta, new MemoryFormatOptional()) : null,
                    FluxInputs.imageIds(rows, cols), zeros(new long[] {textTokens, 3}, new TensorOptions(ScalarType.Float)));
            Tensor delta = empty(new long[] {1, c.innerDim()}, onMeta, new MemoryFormatOptional());
            OpCounter.Recording ops;
            long[] outShape;
            try (ModulationGuidance g = ModulationGuidance.builder().term(Tensors.keep(delta), 3.0, LayerSchedule.from(Math.min(5, c.totalBlocks() - 1))).build();
                 OpCounter.Recording r = OpCounter.record()) {
                Tensor out = model.forward(in, g, 0);
                outShape = Tensors.shape(out);
                out.close();
                ops = r;
            }
            long[] expected = {batch, imageTokens, c.outChannels()};
            if (!Arrays.equals(outShape, expected)) {
                throw new IllegalStateException("dry run produced " + Arrays.toString(outShape) + ", expected " + Arrays.toString(expected));
            }
            DevicePlan.TransformerBytes tb = DevicePlan.transformer(c, q, compute);
            if (!json) {
                report(c, compute, width, height, textTokens, imageTokens, ops, tb.total());
                if (q != null) {
                    long quantized = model.linears().values().stream().filter(io.mmdit4j.nn.Linear::isQuantized).count();
                    System.out.printf(Locale.ROOT, "quantized as %s: %d of %d Linears dequantize per forward (checked on meta tensors)%n",
                            q.name().toLowerCase(Locale.ROOT), quantized, model.linears().size());
                }
                DevicePlan.printBytes(tb, System.out);
                if (budgetBytes > 0) DevicePlan.print(c, tb, compute, budgetBytes, batch, width, height, textTokens, System.out);
            }
            if (gpu != null) {
                double hostMs = hostMsPerStep(model, in);
                printTimeModel(GpuTimeModel.parse(gpu), c, compute, textTokens, imageTokens, ops, hostMs);
            }
        }
        if (gpu == null && json) throw new IllegalArgumentException("--json needs --gpu");
        return 0;
    }

    /**
     * The host's time for one transformer call on meta (dispatch, JNI, shape inference, Java; no kernels): the median of
     * {@code hostReps} forwards after five warm-ups, in ms. What eager CUDA would spend launching, before driver costs.
     */
    private double hostMsPerStep(FluxTransformer model, FluxInputs in) {
        if (hostReps < 1) throw new IllegalArgumentException("--host-reps must be >= 1");
        double[] ms = new double[hostReps];
        try (Rope rope = model.rope(in.txtIds(), in.imgIds())) { // once per request in a generation, as FluxPipeline builds it
            for (int i = -5; i < hostReps; i++) { // 5 warm-ups
                long t0 = System.nanoTime();
                try (PointerScope scope = new PointerScope()) {
                    model.forward(in, ModulationGuidance.none(), 0, rope, null).close();
                }
                if (i >= 0) ms[i] = (System.nanoTime() - t0) / 1e6;
            }
        }
        Arrays.sort(ms);
        return ms[hostReps / 2];
    }

    /** Published anchors (xDiT, FLUX.1-dev 1024x1024 on one H100, 28 steps) and issue 15's targets, ms per step. */
    static final double XDIT_EAGER_MS = 6710.0 / 28, XDIT_COMPILED_MS = 4300.0 / 28, TARGET_EAGER_MS = 190, TARGET_GRAPHS_MS = 150;

    private void printTimeModel(GpuTimeModel m, FluxConfig c, DType compute, int textTokens, int imageTokens, OpCounter.Recording ops, double hostMs) {
        long tokens = (long) textTokens + imageTokens;
        double elementwise = GpuTimeModel.fluxElementwiseBytes(batch, tokens, c.innerDim(), c.totalBlocks(), compute.bytes());
        GpuTimeModel.Step st = m.step(ops.linearFlops(), ops.attentionFlops(), elementwise, hostMs);
        if (json) {
            System.out.printf(Locale.ROOT, "{\"gpu\":\"%s\",\"config\":\"%s\",\"tokens\":%d,\"batch\":%d,\"dtype\":\"%s\",\"gemm_tflop\":%.3f,"
                            + "\"attention_tflop\":%.3f,\"elementwise_gb\":%.2f,\"gemm_ms\":%.1f,\"attention_default_ms\":%.1f,\"attention_cudnn_ms\":%.1f,"
                            + "\"elementwise_ms\":%.1f,\"host_ms_per_step_meta\":%.2f,\"modelled_eager_ms\":%.1f,\"modelled_cudnn_graphs_ms\":%.1f,"
                            + "\"anchor_xdit_eager_ms\":%.1f,\"anchor_xdit_compiled_ms\":%.1f}%n", m.name(), config, tokens, batch, compute.torchName(),
                    ops.linearFlops() / 1e12, ops.attentionFlops() / 1e12, elementwise / 1e9, st.gemmMs(), st.attentionDefaultMs(), st.attentionCudnnMs(),
                    st.elementwiseMs(), hostMs, st.eagerMs(), st.cudnnGraphsMs(), XDIT_EAGER_MS, XDIT_COMPILED_MS);
            return;
        }
        PrintStream o = System.out;
        o.printf(Locale.ROOT, "time model per step on %s (a model, not a measurement; CUDA has never run here):%n", m.name());
        o.printf(Locale.ROOT, "  GEMMs      %6.2f TFLOP at %.0f%% of %.0f TFLOP/s bf16 (assumed)      %7.1f ms%n", ops.linearFlops() / 1e12, m.gemmEff() * 100,
                m.peakBf16() / 1e12, st.gemmMs());
        o.printf(Locale.ROOT, "  attention  %6.2f TFLOP at %.0f TFLOP/s (default SDPA) / %.0f (cuDNN)  %7.1f / %.1f ms%n", ops.attentionFlops() / 1e12,
                m.sdpaDefault() / 1e12, m.sdpaCudnn() / 1e12, st.attentionDefaultMs(), st.attentionCudnnMs());
        o.printf(Locale.ROOT, "  elementwise %5.1f GB at %.0f%% of %.2f TB/s (52 passes/block, assumed) %7.1f ms%n", elementwise / 1e9, m.hbmEff() * 100, m.hbm() / 1e12,
                st.elementwiseMs());
        o.printf(Locale.ROOT, "  host       dispatch + JNI per step, measured on meta (median of %d)  %7.2f ms (overlaps the GPU's work)%n", hostReps, hostMs);
        o.printf(Locale.ROOT, "  step       eager, default SDPA %.1f ms; cuDNN attention + CUDA graphs %.1f ms (targets <= %.0f / <= %.0f)%n", st.eagerMs(),
                st.cudnnGraphsMs(), TARGET_EAGER_MS, TARGET_GRAPHS_MS);
        o.printf(Locale.ROOT, "  anchors    xDiT, FLUX.1-dev 1024x1024 on one H100: %.0f ms/step eager (6.71 s / 28 steps), %.0f ms compiled (4.30 s / 28)%n",
                XDIT_EAGER_MS, XDIT_COMPILED_MS);
    }

    /** {@code WxH} → {width, height}. */
    static int[] parseSize(String text) {
        String[] p = text.toLowerCase(Locale.ROOT).split("x");
        try {
            if (p.length == 2) return new int[] {Integer.parseInt(p[0].trim()), Integer.parseInt(p[1].trim())};
        } catch (NumberFormatException ignored) {
            // the message below
        }
        throw new IllegalArgumentException("--size " + text + ": expected WxH, e.g. 1024x1024");
    }

    /** The limits {@code generate} has: a dry run of a size no request may have only risks the machine. */
    private void checkLimits(int width, int height) {
        try {
            GenerationRequest.checkSize(width, height);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("--size " + size + ": " + e.getMessage(), e);
        }
        if (batch < 1 || batch > GenerationRequest.MAX_IMAGES) {
            throw new IllegalArgumentException("--batch " + batch + ": must be in 1.." + GenerationRequest.MAX_IMAGES);
        }
        if (text != null && (text < 1 || text > 4096)) throw new IllegalArgumentException("--text " + text + ": must be in 1..4096");
    }

    /**
     * Refuses a dry run whose own host allocations exceed the memory available: the meta tensors take none, but RoPE tables
     * are built on the CPU ({@link Rope#buildBytes}), about 5 KB per token.
     */
    static void checkDryRunMemory(long bytes, boolean ignore) {
        long available = SystemMemory.available();
        if (ignore || available < 0 || bytes <= available) return;
        throw new InvalidRequestException(String.format(Locale.ROOT, "--size: the dry run builds %.1f GB of RoPE tables on the CPU, but %.1f GB are "
                + "available; give a smaller --size (or --frames), or --ignore-memory-check", bytes / 1e9, available / 1e9));
    }

    /** What {@code generate} would need for this batch, by the same formulas (weights at the compute dtype). */
    static String generateEstimate(double weightBytes, long workingBytes, double transformerBytes, double decodeBytes, double resultBytes, DType compute) {
        long available = SystemMemory.available();
        double total = weightBytes + workingBytes + resultBytes + io.mmdit4j.pipeline.MemoryPlanner.RUNTIME_BYTES;
        return String.format(Locale.ROOT, "memory to generate this batch on the CPU in %s (estimate): %.2f GB = weights %.2f GB + working set %.2f GB "
                        + "(the larger of a transformer step %.2f GB and the decode %.2f GB, plus kept tensors) + results %.2f GB + runtime %.2f GB; "
                        + "available here: %s", compute.torchName(), total / 1e9, weightBytes / 1e9, workingBytes / 1e9, transformerBytes / 1e9,
                decodeBytes / 1e9, resultBytes / 1e9, io.mmdit4j.pipeline.MemoryPlanner.RUNTIME_BYTES / 1e9,
                available < 0 ? "unknown" : String.format(Locale.ROOT, "%.2f GB", available / 1e9));
    }

    /**
     * Stored settings: the prompt (and negative prompt) of the record first, then every entry; the A1111 {@code parameters}
     * text one line each. Text from a file is printed with its control characters escaped: it must not drive the terminal.
     */
    private static void printText(java.util.Map<String, String> text) {
        String record = text.get(io.mmdit4j.pipeline.GenerationSettings.METADATA_KEY);
        if (record != null) {
            try {
                com.fasterxml.jackson.databind.JsonNode j = new com.fasterxml.jackson.databind.ObjectMapper().readTree(record);
                j.path("prompts").forEach(p -> System.out.println("prompt: " + FileErrors.printable(p.asText())));
                if (j.path("negative_prompt").isTextual()) System.out.println("negative prompt: " + FileErrors.printable(j.get("negative_prompt").asText()));
            } catch (java.io.IOException | RuntimeException e) {
                System.out.println("(the mmdit4j record is not valid JSON)");
            }
        }
        text.forEach((k, v) -> {
            if (!k.equals(io.mmdit4j.pipeline.GenerationSettings.PARAMETERS_KEY)) {
                System.out.println(FileErrors.printable(k) + ": " + FileErrors.printable(v));
                return;
            }
            System.out.println(FileErrors.printable(k) + ":");
            v.lines().forEach(line -> System.out.println("  " + FileErrors.printable(line)));
        });
    }

    /** A video's stream summary, then its stored settings (the container metadata) one per line. */
    private static void inspectVideo(Path video) {
        io.mmdit4j.video.VideoReader.Info info = io.mmdit4j.video.VideoReader.probe(video);
        System.out.printf(Locale.ROOT, "# %s: %s, %dx%d, %.3g fps, %s frames, %s s%n", info.container(), info.codec(),
                info.width(), info.height(), info.fps(), info.frames() < 0 ? "?" : String.valueOf(info.frames()),
                info.durationSeconds() < 0 ? "?" : String.format(Locale.ROOT, "%.3f", info.durationSeconds()));
        printText(info.metadata());
    }

    private void report(FluxConfig c, DType compute, int width, int height, int textTokens, int imageTokens, OpCounter.Recording ops, double weightBytes) {
        long params = FluxParameters.count(c);
        long seq = (long) textTokens + imageTokens;
        // the same formulas the memory check of generate uses (FluxMemory)
        double blockActivations = FluxMemory.blockActivationBytes(c, batch, seq, compute);
        double scores = FluxMemory.attentionScoreBytes(c, batch, seq);
        FluxMemory memory = new FluxMemory(c, VaeConfig.flux(), compute);
        System.out.printf(Locale.ROOT, "model: %s%n", c);
        System.out.printf(Locale.ROOT, "image %dx%d -> %d image tokens, %d text tokens, batch %d, compute %s%n",
                width, height, imageTokens, textTokens, batch, compute.torchName());
        System.out.printf(Locale.ROOT, "shapes: every block checked on meta tensors, output [%d, %d, %d]%n", batch, imageTokens, c.outChannels());
        System.out.printf(Locale.ROOT, "parameters: %,d (%.2f B)%n", params, params / 1e9);
        System.out.printf(Locale.ROOT, "weights: fp32 %.2f GB, bf16/fp16 %.2f GB, fp8 %.2f GB%n", params * 4 / 1e9, params * 2 / 1e9, params / 1e9);
        System.out.printf(Locale.ROOT, "activations (estimate, peak inside one block): %.2f GB; + %.2f GB for the score matrix with math attention%n",
                blockActivations / 1e9, scores / 1e9);
        System.out.printf(Locale.ROOT, "FLOPs per step (one transformer call): linear %.2f TFLOP (%d GEMMs), attention %.2f TFLOP (%d calls), total %.2f TFLOP%n",
                ops.linearFlops() / 1e12, ops.linears().size(), ops.attentionFlops() / 1e12, ops.attentions().size(), ops.totalFlops() / 1e12);
        double results = (double) batch * (3L * width * height * Float.BYTES + (double) imageTokens * c.inChannels() * compute.bytes());
        System.out.println(generateEstimate(weightBytes, memory.workingBytes(batch, width, height, textTokens),
                memory.stepBytes(batch, width, height, textTokens), io.mmdit4j.vae.AutoencoderKL.decodePeakBytes(VaeConfig.flux(), batch, width, height, compute),
                results, compute) + " (without the text encoders' weights)");
    }

    private FluxConfig resolveConfig() {
        Path p = Path.of(config);
        if (Files.isRegularFile(p) && p.getFileName().toString().equals("config.json")) return FluxConfig.fromDiffusersConfig(p);
        if (Files.exists(p)) return FluxTransformer.inspect(p, null);
        ModelDescriptor d = ModelRegistry.standard().descriptor(config);
        if (d == null) throw new IllegalArgumentException("--config " + config + ": not a file, folder or model name from models/");
        if (!d.family().equals("flux")) throw new IllegalArgumentException("--config " + config + ": inspect supports the flux family");
        if (d.isGenerated()) {
            return FluxConfig.fromDiffusersConfig(ModelRegistry.standard().resolve(config).resolve("transformer/config.json"));
        }
        return d.variant().equals("dev") ? FluxConfig.dev() : FluxConfig.schnell();
    }

    private int defaultText() {
        ModelDescriptor d = ModelRegistry.standard().descriptor(config);
        return d != null && d.defaults().has("max_sequence_length") ? d.defaults().get("max_sequence_length").asInt() : 512;
    }
}
