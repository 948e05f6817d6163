package io.mmdit4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.hunyuan.HunyuanVideoConfig;
import io.mmdit4j.hunyuan.HunyuanVideoParameters;
import io.mmdit4j.hunyuan.HunyuanVideoTransformer;
import io.mmdit4j.io.JsonConfigs;
import io.mmdit4j.io.TensorSource;
import io.mmdit4j.io.WeightFiles;
import io.mmdit4j.models.ModelDescriptor;
import io.mmdit4j.models.ModelRegistry;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.OpCounter;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.DeviceOptional;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.Set;

import static org.bytedeco.pytorch.global.torch.empty;

/**
 * {@code mmdit inspect --config hunyuan-video}: the HunyuanVideo transformer's real-size dry run on meta tensors
 * (every shape of one denoising step checked), with parameters, weight bytes per dtype, an activation-memory estimate
 * and the FLOPs of one transformer call.
 */
final class HunyuanVideoInspect {
    private HunyuanVideoInspect() {}

    /** Names that select the shipped configuration. */
    static final Set<String> NAMES = Set.of("hunyuan-video", "hunyuanvideo", "HunyuanVideo");
    /** Pixels per latent (8× VAE) times the patch size (2). */
    static final int PIXEL_MULTIPLE = 16;
    static final int DEFAULT_FRAMES = 129;
    static final int DEFAULT_TEXT = 256;

    /** Whether {@code config} names a HunyuanVideo transformer (shipped name, registry family, config.json or checkpoint). */
    static boolean handles(String config) {
        if (NAMES.contains(config)) return true;
        ModelDescriptor d = ModelRegistry.standard().descriptor(config);
        if (d != null) return d.family().toLowerCase(Locale.ROOT).startsWith("hunyuan");
        Path p = Path.of(config);
        if (Files.isRegularFile(p) && p.getFileName().toString().equals("config.json")) {
            return "HunyuanVideoTransformer3DModel".equals(JsonConfigs.readObject(p).path("_class_name").asText());
        }
        Path cfg = Files.isRegularFile(p.resolve("config.json")) ? p.resolve("config.json") : p.resolve("transformer").resolve("config.json");
        if (Files.isRegularFile(cfg)) return "HunyuanVideoTransformer3DModel".equals(JsonConfigs.readObject(cfg).path("_class_name").asText());
        if (Files.isRegularFile(p)) {
            try (TensorSource s = WeightFiles.open(p)) {
                return s.keys().contains("img_in.proj.weight") || s.keys().contains("x_embedder.proj.weight");
            } catch (RuntimeException e) {
                return false;
            }
        }
        return false;
    }

    static HunyuanVideoConfig resolve(String config) {
        Path p = Path.of(config);
        if (Files.isRegularFile(p) && p.getFileName().toString().equals("config.json")) return HunyuanVideoConfig.fromDiffusersConfig(p);
        if (Files.exists(p) && !NAMES.contains(config)) return HunyuanVideoTransformer.inspect(p);
        ModelDescriptor d = NAMES.contains(config) ? null : ModelRegistry.standard().descriptor(config);
        if (d != null && d.isGenerated()) return HunyuanVideoTransformer.inspect(ModelRegistry.standard().resolve(config)); // a demo's own size
        return HunyuanVideoConfig.hunyuanVideo();
    }

    /** Latent frames of a video of {@code frames} frames: the causal VAE keeps the first and compresses the rest 4×. */
    static int latentFrames(int frames) {
        if (frames < 1 || (frames - 1) % 4 != 0) {
            throw new IllegalArgumentException("--frames " + frames + ": HunyuanVideo needs 4k+1 frames (e.g. 61, 129)");
        }
        return (frames - 1) / 4 + 1;
    }

    /** Runs the dry run and prints the report; returns the parameter count. */
    static long run(HunyuanVideoConfig c, DType compute, int width, int height, int frames, int textTokens, int batch, PrintStream out) {
        return run(c, compute, width, height, frames, textTokens, batch, false, out);
    }

    /** @param ignoreMemoryCheck dry-run even when the RoPE table it builds on the CPU exceeds the memory available */
    static long run(HunyuanVideoConfig c, DType compute, int width, int height, int frames, int textTokens, int batch, boolean ignoreMemoryCheck,
                    PrintStream out) {
        if (frames < 1 || frames > io.mmdit4j.pipeline.VideoFrames.MAX) {
            throw new IllegalArgumentException("--frames " + frames + ": must be in 1.." + io.mmdit4j.pipeline.VideoFrames.MAX);
        }
        if (width % PIXEL_MULTIPLE != 0 || height % PIXEL_MULTIPLE != 0 || width < 1 || height < 1) {
            throw new IllegalArgumentException("--size " + width + "x" + height + ": width and height must be positive multiples of " + PIXEL_MULTIPLE);
        }
        if (batch < 1 || textTokens < 1) throw new IllegalArgumentException("--batch and --text must be >= 1");
        int latentF = latentFrames(frames), latentH = height / 8, latentW = width / 8;
        if (latentF % c.patchSizeT() != 0 || latentH % c.patchSize() != 0 || latentW % c.patchSize() != 0) {
            throw new IllegalArgumentException("latent " + latentF + "x" + latentH + "x" + latentW + " is not divisible by the patch size");
        }
        long imageTokens = (long) (latentF / c.patchSizeT()) * (latentH / c.patchSize()) * (latentW / c.patchSize());
        InspectCommand.checkDryRunMemory(io.mmdit4j.nn.Rope.buildBytes(imageTokens, c.ropeAxesDim()), ignoreMemoryCheck);
        OpCounter.Recording ops;
        long[] outShape;
        try (HunyuanVideoTransformer model = HunyuanVideoTransformer.meta(c, compute); PointerScope scope = new PointerScope();
             Device meta = new Device("meta")) {
            TensorOptions onMeta = new TensorOptions(compute.scalarType()).device(new DeviceOptional(meta));
            Tensor hidden = empty(new long[] {batch, c.inChannels(), latentF, latentH, latentW}, onMeta, new MemoryFormatOptional());
            Tensor t = empty(new long[] {batch}, onMeta, new MemoryFormatOptional());
            Tensor text = empty(new long[] {batch, textTokens, c.textEmbedDim()}, onMeta, new MemoryFormatOptional());
            Tensor mask = empty(new long[] {batch, textTokens}, onMeta, new MemoryFormatOptional());
            Tensor pooled = empty(new long[] {batch, c.pooledProjectionDim()}, onMeta, new MemoryFormatOptional());
            Tensor guidance = c.guidanceEmbeds() ? empty(new long[] {batch}, onMeta, new MemoryFormatOptional()) : null;
            Tensor delta = empty(new long[] {1, c.innerDim()}, onMeta, new MemoryFormatOptional());
            try (ModulationGuidance g = ModulationGuidance.builder()
                    .term(Tensors.keep(delta), 3.0, LayerSchedule.from(Math.min(5, c.totalBlocks() - 1))).build();
                 OpCounter.Recording r = OpCounter.record()) {
                Tensor result = model.forward(hidden, t, text, mask, pooled, guidance, g, 0);
                outShape = Tensors.shape(result);
                result.close();
                ops = r;
            }
        }
        long[] expected = {batch, c.outChannels(), latentF, latentH, latentW};
        if (!Arrays.equals(outShape, expected)) {
            throw new IllegalStateException("dry run produced " + Arrays.toString(outShape) + ", expected " + Arrays.toString(expected));
        }
        long params = HunyuanVideoParameters.count(c);
        long seq = textTokens + imageTokens;
        // the same formulas the memory check of generate uses (HunyuanVideoMemory)
        double blockActivations = io.mmdit4j.hunyuan.HunyuanVideoMemory.blockActivationBytes(c, batch, seq, compute);
        double scores = io.mmdit4j.hunyuan.HunyuanVideoMemory.attentionScoreBytes(c, batch, seq);
        out.printf(Locale.ROOT, "model: %s%n", c);
        out.printf(Locale.ROOT, "video %dx%d, %d frames -> latent %dx%dx%d, %d image tokens, %d text tokens, batch %d, compute %s%n",
                width, height, frames, latentF, latentH, latentW, imageTokens, textTokens, batch, compute.torchName());
        out.printf(Locale.ROOT, "shapes: every block checked on meta tensors, output %s%n", Arrays.toString(outShape));
        out.printf(Locale.ROOT, "parameters: %,d (%.2f B)%n", params, params / 1e9);
        out.printf(Locale.ROOT, "weights: fp32 %.2f GB, bf16/fp16 %.2f GB, fp8 %.2f GB%n", params * 4 / 1e9, params * 2 / 1e9, params / 1e9);
        out.printf(Locale.ROOT, "activations (estimate, peak inside one block): %.2f GB; + %.2f GB for the score matrix with math attention%n",
                blockActivations / 1e9, scores / 1e9);
        out.printf(Locale.ROOT, "FLOPs per step (one transformer call): linear %.2f TFLOP (%d GEMMs), attention %.2f TFLOP (%d calls), total %.2f TFLOP%n",
                ops.linearFlops() / 1e12, ops.linears().size(), ops.attentionFlops() / 1e12, ops.attentions().size(), ops.totalFlops() / 1e12);
        printVaeDecode(out, compute, batch, latentF, latentH, latentW);
        var vae = io.mmdit4j.hunyuan.vae.HunyuanVideoVaeConfig.hunyuanVideo();
        var memory = new io.mmdit4j.hunyuan.HunyuanVideoMemory(c, vae, compute);
        double step = blockActivations + (io.mmdit4j.runtime.Torch.usesMathAttention(compute) ? scores : 0);
        double decode = io.mmdit4j.hunyuan.vae.AutoencoderKLHunyuanVideo.plan(vae, compute, new long[] {batch, vae.latentChannels(), latentF, latentH, latentW},
                io.mmdit4j.hunyuan.vae.AutoencoderKLHunyuanVideo.Tiling.DIFFUSERS_DEFAULT).peakActivationBytes();
        double results = (double) batch * ((double) frames * 3 * width * height * Float.BYTES + (double) c.inChannels() * latentF * latentH * latentW * compute.bytes());
        out.println(InspectCommand.generateEstimate((double) params * compute.bytes(), memory.workingBytes(batch, width, height, frames, textTokens), step,
                decode, results, compute) + " (without the text encoders' weights)");
        return params;
    }

    /** The 3-D VAE decode of this video (shipped VAE config): weights and peak activations untiled, frame-chunked, tiled. */
    private static void printVaeDecode(java.io.PrintStream out, DType compute, long batch, long f, long h, long w) {
        var vae = io.mmdit4j.hunyuan.vae.HunyuanVideoVaeConfig.hunyuanVideo();
        long[] latent = {batch, vae.latentChannels(), f, h, w};
        long vaeParams = io.mmdit4j.hunyuan.vae.AutoencoderKLHunyuanVideo.decoderParameterCount(vae);
        StringBuilder plans = new StringBuilder();
        for (var t : new Object[][] {{"untiled", io.mmdit4j.hunyuan.vae.AutoencoderKLHunyuanVideo.Tiling.NONE},
                {"frame-chunked (diffusers default)", io.mmdit4j.hunyuan.vae.AutoencoderKLHunyuanVideo.Tiling.DIFFUSERS_DEFAULT},
                {"chunked + spatial tiles", io.mmdit4j.hunyuan.vae.AutoencoderKLHunyuanVideo.Tiling.ENABLED}}) {
            var plan = io.mmdit4j.hunyuan.vae.AutoencoderKLHunyuanVideo.plan(vae, compute, latent,
                    (io.mmdit4j.hunyuan.vae.AutoencoderKLHunyuanVideo.Tiling) t[1]);
            plans.append(String.format(Locale.ROOT, "%s%s %.2f GB", plans.length() == 0 ? "" : ", ", t[0], plan.peakActivationBytes() / 1e9));
        }
        out.printf(Locale.ROOT, "VAE decode: %,d decoder parameters (%.2f GB in %s); peak activations (estimate): %s%n",
                vaeParams, vaeParams * (double) compute.bytes() / 1e9, compute.torchName(), plans);
    }

    static int defaultText(String config) {
        ModelDescriptor d = ModelRegistry.standard().descriptor(config);
        JsonNode defaults = d == null ? null : d.defaults();
        return defaults != null && defaults.has("max_sequence_length") ? defaults.get("max_sequence_length").asInt() : DEFAULT_TEXT;
    }
}
