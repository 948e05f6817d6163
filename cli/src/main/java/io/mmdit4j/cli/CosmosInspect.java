package io.mmdit4j.cli;

import io.mmdit4j.cosmos.CosmosConfig;
import io.mmdit4j.cosmos.CosmosMemory;
import io.mmdit4j.cosmos.CosmosTransformer;
import io.mmdit4j.cosmos.PooledClipAdapter;
import io.mmdit4j.guidance.GuidanceTerm;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.guidance.StepWindow;
import io.mmdit4j.io.JsonConfigs;
import io.mmdit4j.io.ParameterShapes;
import io.mmdit4j.models.ModelDescriptor;
import io.mmdit4j.models.ModelRegistry;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.OpCounter;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.text.t5.T5Config;
import io.mmdit4j.text.t5.T5Encoder;
import io.mmdit4j.vae.wan.AutoencoderKLWan;
import io.mmdit4j.vae.wan.WanVaeConfig;
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
 * {@code mmdit inspect --config cosmos-predict2-2b}: COSMOS's real-size dry run on meta tensors: one denoising step (the
 * conditional and the unconditional forward of x0-form CFG, with the pooled-CLIP adapter and guidance from block 0), then
 * the Wan VAE decode, every shape checked; parameters of the transformer, adapter, T5-11B and VAE decoder, weight bytes,
 * activation estimates and FLOPs per step.
 */
final class CosmosInspect {
    private CosmosInspect() {}

    static final Set<String> NAMES = Set.of("cosmos-predict2-2b", "cosmos", "Cosmos-Predict2-2B-Text2Image");
    static final int CLIP_L = 768;

    static boolean handles(String config) {
        if (NAMES.contains(config)) return true;
        ModelDescriptor d = ModelRegistry.standard().descriptor(config);
        if (d != null) return d.family().equals("cosmos");
        Path p = Path.of(config);
        Path cfg = Files.isRegularFile(p) && p.getFileName().toString().equals("config.json") ? p
                : Files.isRegularFile(p.resolve("config.json")) ? p.resolve("config.json") : p.resolve("transformer").resolve("config.json");
        return Files.isRegularFile(cfg) && "CosmosTransformer3DModel".equals(JsonConfigs.readObject(cfg).path("_class_name").asText());
    }

    static CosmosConfig resolve(String config) {
        if (NAMES.contains(config)) return CosmosConfig.predict2_2b();
        Path p = Path.of(config);
        if (Files.isRegularFile(p) && p.getFileName().toString().equals("config.json")) return CosmosConfig.fromDiffusersConfig(p);
        if (Files.exists(p)) return CosmosTransformer.inspect(p);
        ModelDescriptor d = ModelRegistry.standard().descriptor(config);
        if (d != null && d.isGenerated()) return CosmosTransformer.inspect(ModelRegistry.standard().resolve(config));
        return CosmosConfig.predict2_2b();
    }

    /** T5-11B's encoder (Cosmos-Predict2's text_encoder): d_model 1024, 128 heads × 128, relu feed-forward 65536, 24 layers. */
    static T5Config t5_11b() {
        return new T5Config(32128, 1024, 128, 65536, 24, 128, 32, 128, 1e-6, "relu");
    }

    static void run(CosmosConfig c, DType compute, int width, int height, int textTokens, int batch, double cfg, PrintStream out) {
        if (width % 16 != 0 || height % 16 != 0 || width < 16 || height < 16) {
            throw new IllegalArgumentException("--size " + width + "x" + height + ": width and height must be positive multiples of 16");
        }
        if (batch < 1 || textTokens < 1) throw new IllegalArgumentException("--batch and --text must be >= 1");
        long h = height / 8, w = width / 8;
        long imageTokens = (h / c.patchSize()[1]) * (w / c.patchSize()[2]);
        OpCounter.Recording ops;
        long[] outShape, decoded;
        WanVaeConfig vae = WanVaeConfig.wan21();
        try (CosmosTransformer model = CosmosTransformer.meta(c, CLIP_L, compute); PointerScope scope = new PointerScope();
             Device meta = new Device("meta"); AutoencoderKLWan decoder = AutoencoderKLWan.meta(vae, compute)) {
            TensorOptions onMeta = new TensorOptions(compute.scalarType()).device(new DeviceOptional(meta));
            Tensor hidden = empty(new long[] {batch, c.inChannels(), 1, h, w}, onMeta, new MemoryFormatOptional());
            Tensor t = empty(new long[] {batch}, onMeta, new MemoryFormatOptional());
            Tensor text = empty(new long[] {batch, textTokens, c.textEmbedDim()}, onMeta, new MemoryFormatOptional());
            Tensor pooled = empty(new long[] {batch, CLIP_L}, onMeta, new MemoryFormatOptional());
            Tensor delta = empty(new long[] {1, c.conditioningDim()}, onMeta, new MemoryFormatOptional());
            try (ModulationGuidance g = ModulationGuidance.builder()
                    .add(new GuidanceTerm("dry run", Tensors.keep(delta), 3.0, LayerSchedule.from(0), StepWindow.all(), null)).build();
                 OpCounter.Recording r = OpCounter.record()) {
                Tensor result = model.forward(hidden, t, text, null, pooled, g, 0, null, null);
                outShape = Tensors.shape(result);
                result.close();
                ops = r;
            }
            Tensor latents = empty(new long[] {batch, vae.zDim(), 1, h, w}, onMeta, new MemoryFormatOptional());
            Tensor video = decoder.decode(latents);
            decoded = Tensors.shape(video);
            video.close();
        }
        long[] expected = {batch, c.outChannels(), 1, h, w};
        if (!Arrays.equals(outShape, expected)) throw new IllegalStateException("dry run produced " + Arrays.toString(outShape) + ", expected " + Arrays.toString(expected));
        int calls = cfg > 1 ? 2 : 1;
        long params = ParameterShapes.count(CosmosTransformer.parameterShapes(c));
        long adapter = ParameterShapes.count(PooledClipAdapter.parameterShapes(c.numLayers(), c.conditioningDim(), CLIP_L));
        long t5 = ParameterShapes.count(ParameterShapes.of("T5-11B encoder", sd -> T5Encoder.fromStateDict(sd, t5_11b(), DType.F32)));
        long vaeParams = ParameterShapes.count(AutoencoderKLWan.decoderShapes(vae));
        // the same formulas the memory check of generate uses (CosmosMemory)
        CosmosMemory memory = new CosmosMemory(c, vae, compute);
        double block = CosmosMemory.blockActivationBytes(c, batch, imageTokens, textTokens, compute);
        double scores = CosmosMemory.attentionScoreBytes(c, batch, imageTokens, textTokens);
        double decode = AutoencoderKLWan.peakActivationBytes(vae, compute, batch, h, w);
        out.printf(Locale.ROOT, "model: %s + pooled-CLIP adapter (CLIP-L %d)%n", c, CLIP_L);
        out.printf(Locale.ROOT, "image %dx%d -> latent 16x1x%dx%d, %d image tokens, %d text tokens, batch %d, compute %s%n",
                width, height, h, w, imageTokens, textTokens, batch, compute.torchName());
        out.printf(Locale.ROOT, "shapes: every block checked on meta tensors, output %s; VAE decode %s%n", Arrays.toString(outShape), Arrays.toString(decoded));
        out.printf(Locale.ROOT, "parameters: transformer %,d (%.2f B), adapter %,d (%.1f M), T5-11B encoder %,d (%.2f B), Wan VAE decoder %,d (%.1f M)%n",
                params, params / 1e9, adapter, adapter / 1e6, t5, t5 / 1e9, vaeParams, vaeParams / 1e6);
        out.printf(Locale.ROOT, "weights: transformer + adapter fp32 %.2f GB, bf16 %.2f GB; T5 bf16 %.2f GB (the pipeline keeps it loaded)%n",
                (params + adapter) * 4 / 1e9, (params + adapter) * 2 / 1e9, t5 * 2 / 1e9);
        out.printf(Locale.ROOT, "activations (estimate, peak inside one block): %.2f GB; + %.2f GB for the score matrices with math attention%n",
                block / 1e9, scores / 1e9);
        out.printf(Locale.ROOT, "VAE decode peak activations (estimate, one frame, %s): %.2f GB%n", compute.torchName(), decode / 1e9);
        out.printf(Locale.ROOT, "FLOPs per step (%d transformer call%s with CFG %s): linear %.2f TFLOP (%d GEMMs), attention %.2f TFLOP, total %.2f TFLOP%n",
                calls, calls == 1 ? "" : "s", cfg > 1 ? "on" : "off", calls * ops.linearFlops() / 1e12, ops.linears().size(),
                calls * ops.attentionFlops() / 1e12, calls * ops.totalFlops() / 1e12);
        double step = block + (io.mmdit4j.runtime.Torch.usesMathAttention(compute) ? scores : 0);
        out.println(InspectCommand.generateEstimate((double) (params + adapter + t5 + vaeParams) * compute.bytes(),
                memory.workingBytes(batch, cfg > 1, width, height, textTokens), step, decode, (double) batch * memory.resultBytes(width, height), compute)
                + " (with T5-11B, without the CLIP-L's weights)");
    }

    static int defaultText(String config) {
        ModelDescriptor d = ModelRegistry.standard().descriptor(config);
        return d != null && d.defaults().has("max_sequence_length") ? d.defaults().get("max_sequence_length").asInt() : 512;
    }
}
