package io.mmdit4j.hunyuan;

import io.mmdit4j.guidance.GuidanceTerm;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.guidance.StepWindow;
import io.mmdit4j.hunyuan.vae.AutoencoderKLHunyuanVideo;
import io.mmdit4j.io.JsonConfigs;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.nn.Rope;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.sampling.FlowMatchEulerScheduler;
import io.mmdit4j.sampling.FlowMatchSchedulerConfig;
import io.mmdit4j.sampling.Noise;
import io.mmdit4j.sampling.Progress;
import io.mmdit4j.sampling.Schedule;
import io.mmdit4j.sampling.TimedGeneration;
import io.mmdit4j.sampling.Timings;
import io.mmdit4j.text.llama.HunyuanPromptEncoder;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CancellationException;

import static org.bytedeco.pytorch.global.torch.full;

/**
 * HunyuanVideo text-to-video as diffusers' {@code HunyuanVideoPipeline.__call__} (MODEL-SPEC E.2/E.3): prompts →
 * templated Llama states + CLIP-L pooled vector → seeded fp32 noise {@code [B, 16, (F−1)/4+1, H/8, W/8]} (one generator
 * per video) → flow-matching Euler loop with embedded guidance and per-step, per-row modulation guidance (through the
 * CLIP-pooled path of {@code temb}) → causal 3-D VAE → frames {@code [B, F, 3, H, W]} in [0, 1].
 *
 * <p>What the reference does and this class repeats: the schedule is {@code linspace(1, 0, N+1)[:-1]} with the
 * scheduler config's static shift; the latents start in fp32, are cast to the model dtype for each forward pass, and
 * the Euler step casts its result to the model-output dtype (so with bf16 weights they are bf16 from step 1 on);
 * {@code timestep = t.to(latents.dtype)}; {@code guidance = tensor([scale]·B, dtype=transformer_dtype)·1000} (bf16:
 * 6.0 → 6016). Nothing is negated or rescaled; there is no classifier-free guidance.
 */
public final class HunyuanVideoPipeline implements AutoCloseable {
    public static final String CLASS_NAME = "HunyuanVideoPipeline";

    private final HunyuanPromptEncoder text;
    private final HunyuanVideoTransformer transformer;
    private final AutoencoderKLHunyuanVideo vae;
    private final FlowMatchSchedulerConfig schedulerConfig;
    private final AutoencoderKLHunyuanVideo.Tiling tiling;

    /** HunyuanVideo's shipped scheduler config: static shift 7.0, no dynamic shifting. */
    public static FlowMatchSchedulerConfig defaultSchedulerConfig() {
        return FlowMatchSchedulerConfig.sd3().withShift(7.0);
    }

    /** A modulation-guidance direction given as prompts (p+, p−) with its weight, layers, steps and per-video weights (null = all 1). */
    public record Direction(String label, String pos, String neg, double w, LayerSchedule layers, StepWindow steps, double[] rowWeights) {
        public Direction {
            if (pos == null || neg == null) throw new IllegalArgumentException("guidance direction '" + label + "' needs both prompts");
            if (!Double.isFinite(w)) throw new IllegalArgumentException("guidance direction '" + label + "': w must be finite, got " + w);
            if (layers == null) layers = LayerSchedule.all();
            if (steps == null) steps = StepWindow.all();
            if (rowWeights != null) rowWeights = rowWeights.clone();
        }
    }

    /**
     * One generation.
     *
     * @param videosPerPrompt   videos per prompt (diffusers' {@code num_videos_per_prompt})
     * @param width             pixels, a positive multiple of 16 (8× VAE compression, then 2×2 patches)
     * @param height            pixels, a positive multiple of 16
     * @param frames            frames of the video, {@code 4k + 1} (the VAE's 4× causal temporal compression)
     * @param guidanceScale     the embedded guidance scale (6.0 for HunyuanVideo)
     * @param seeds             one per video (B·n), or one seed for video 0 and seed+i for video i
     * @param maxSequenceLength LLM tokens after the template crop (256 in the reference)
     * @param latents           optional initial latents {@code [B·n, 16, (F−1)/4+1, H/8, W/8]} instead of seeds
     */
    public record Request(List<String> prompts, int videosPerPrompt, int width, int height, int frames, int steps, double guidanceScale,
                          long[] seeds, int maxSequenceLength, List<Direction> guidance, Tensor latents) {
        public Request {
            if (prompts == null || prompts.isEmpty()) throw new IllegalArgumentException("at least one prompt is required");
            if (videosPerPrompt < 1) throw new IllegalArgumentException("videos per prompt must be >= 1, got " + videosPerPrompt);
            checkSize(width, height);
            checkFrames(frames);
            if (steps < 1) throw new IllegalArgumentException("steps must be >= 1, got " + steps);
            if (!Double.isFinite(guidanceScale)) throw new IllegalArgumentException("guidance scale must be finite, got " + guidanceScale);
            if (maxSequenceLength < 1) throw new IllegalArgumentException("max sequence length must be >= 1, got " + maxSequenceLength);
            int batch = prompts.size() * videosPerPrompt;
            if (seeds != null && seeds.length > 1 && seeds.length != batch) {
                throw new IllegalArgumentException(seeds.length + " seeds for " + batch + " videos: give one seed, or one per video");
            }
            prompts = List.copyOf(prompts);
            seeds = seeds == null ? null : seeds.clone();
            guidance = guidance == null ? List.of() : List.copyOf(guidance);
            for (Direction d : guidance) {
                if (d.rowWeights() != null && d.rowWeights().length != batch) {
                    throw new IllegalArgumentException("guidance '" + d.label() + "': " + d.rowWeights().length + " row weights for " + batch + " videos");
                }
            }
        }

        public int batch() {
            return prompts.size() * videosPerPrompt;
        }

        /** Latent frames {@code (F − 1)/4 + 1}. */
        public int latentFrames() {
            return (frames - 1) / 4 + 1;
        }

        public long[] seedsPerVideo() {
            long[] s = new long[batch()];
            for (int i = 0; i < s.length; i++) s[i] = seeds == null || seeds.length == 0 ? i : seeds.length == s.length ? seeds[i] : seeds[0] + i;
            return s;
        }
    }

    /** Width and height must be positive multiples of 16: the VAE compresses 8× and the transformer patches 2×2. */
    public static void checkSize(int width, int height) {
        if (width < 16 || height < 16 || width % 16 != 0 || height % 16 != 0) {
            throw new IllegalArgumentException("width and height must be positive multiples of 16 (e.g. 512x320, 848x480, 1280x720), got "
                    + width + "x" + height);
        }
    }

    /** Frame counts must be {@code 4k + 1} (1, 5, 9, ..., 61, ..., 129): the VAE compresses time 4× after the first frame. */
    public static void checkFrames(int frames) {
        if (frames < 1 || (frames - 1) % 4 != 0) {
            int below = Math.max(1, (frames - 1) / 4 * 4 + 1), above = below + 4;
            throw new IllegalArgumentException("frames must be of the form 4k+1 (1, 5, 9, ..., 61, ..., 129), got " + frames
                    + (frames > 1 ? "; nearest: " + below + " or " + above : ""));
        }
    }



    /** Frames {@code [B·n, F, 3, H, W]} in [0, 1] (fp32, CPU) and the final latents {@code [B·n, 16, F', h, w]}; owned by this result. */
    public record Result(Tensor frames, Tensor finalLatents, Timings timings) implements AutoCloseable {
        @Override
        public void close() {
            Native.release(frames);
            Native.release(finalLatents);
        }
    }

    /** Takes ownership of the three models; the VAE decodes with {@code tiling} (diffusers' default frame chunking). */
    public HunyuanVideoPipeline(HunyuanPromptEncoder text, HunyuanVideoTransformer transformer, AutoencoderKLHunyuanVideo vae,
                                FlowMatchSchedulerConfig schedulerConfig, AutoencoderKLHunyuanVideo.Tiling tiling) {
        checkWidths("HunyuanVideo pipeline", text, transformer, vae);
        if (schedulerConfig.useDynamicShifting()) {
            throw new ModelFormatException("HunyuanVideo pipeline: the scheduler config uses dynamic shifting, but HunyuanVideoPipeline passes no mu");
        }
        this.text = text;
        this.transformer = transformer;
        this.vae = vae;
        this.schedulerConfig = schedulerConfig;
        this.tiling = tiling == null ? AutoencoderKLHunyuanVideo.Tiling.DIFFUSERS_DEFAULT : tiling;
    }

    /**
     * A diffusers HunyuanVideo folder: {@code model_index.json} ({@code _class_name} HunyuanVideoPipeline), {@code transformer/},
     * {@code vae/}, {@code scheduler/} (optional: shift 7.0 when absent), {@code tokenizer/} + {@code text_encoder/} (Llama)
     * and {@code tokenizer_2/} + {@code text_encoder_2/} (CLIP-L). All models run in {@code dtype}.
     */
    public static HunyuanVideoPipeline load(Path folder, DType dtype, DeviceSpec device) {
        Path index = folder.resolve("model_index.json");
        if (!Files.isRegularFile(index)) throw new ModelFormatException(folder + ": no model_index.json (expected a diffusers HunyuanVideo folder)");
        JsonConfigs.checkClass(JsonConfigs.readObject(index), index, CLASS_NAME);
        for (String part : new String[] {"transformer", "vae"}) {
            if (!Files.isDirectory(folder.resolve(part))) throw new ModelFormatException(folder + ": missing '" + part + "/' (expected a diffusers HunyuanVideo folder)");
        }
        FlowMatchSchedulerConfig sched = Files.isDirectory(folder.resolve("scheduler"))
                ? FlowMatchSchedulerConfig.fromFile(folder.resolve("scheduler")) : defaultSchedulerConfig();
        List<AutoCloseable> loaded = new ArrayList<>();
        try {
            HunyuanVideoTransformer transformer = track(loaded, HunyuanVideoTransformer.load(folder.resolve("transformer"), dtype, device));
            AutoencoderKLHunyuanVideo vae = track(loaded, AutoencoderKLHunyuanVideo.load(folder.resolve("vae"), null, dtype, device));
            HunyuanPromptEncoder text = track(loaded, HunyuanPromptEncoder.load(folder, dtype));
            return new HunyuanVideoPipeline(text, transformer, vae, sched, AutoencoderKLHunyuanVideo.Tiling.DIFFUSERS_DEFAULT);
        } catch (RuntimeException e) {
            loaded.forEach(Modules::closeQuietly);
            throw e;
        }
    }

    private static <T extends AutoCloseable> T track(List<AutoCloseable> list, T t) {
        list.add(t);
        return t;
    }

    private static void checkWidths(String origin, HunyuanPromptEncoder text, HunyuanVideoTransformer t, AutoencoderKLHunyuanVideo vae) {
        HunyuanVideoConfig c = t.config();
        if (text.textDim() != c.textEmbedDim() || text.pooledDim() != c.pooledProjectionDim()) {
            throw new ModelFormatException(origin + ": text encoders give Llama width " + text.textDim() + " and CLIP pooled width "
                    + text.pooledDim() + ", but the transformer expects text_embed_dim " + c.textEmbedDim() + " and pooled_projection_dim "
                    + c.pooledProjectionDim());
        }
        int latent = vae.config().latentChannels();
        if (c.inChannels() != latent || c.outChannels() != latent) {
            throw new ModelFormatException(origin + ": the VAE has " + latent + " latent channels, but the transformer has in_channels "
                    + c.inChannels() + " and out_channels " + c.outChannels());
        }
        if (vae.config().spatialCompressionRatio() != 8 || vae.config().temporalCompressionRatio() != 4) {
            throw new ModelFormatException(origin + ": the VAE compresses " + vae.config().spatialCompressionRatio() + "x in space and "
                    + vae.config().temporalCompressionRatio() + "x in time; HunyuanVideo's pipeline expects 8x and 4x");
        }
    }

    public HunyuanVideoTransformer transformer() { return transformer; }
    public AutoencoderKLHunyuanVideo vae() { return vae; }
    public HunyuanPromptEncoder textEncoder() { return text; }
    public FlowMatchSchedulerConfig schedulerConfig() { return schedulerConfig; }

    // ---------------------------------------------------------------- steps

    /** {@code linspace(1, 0, N+1)[:-1]} with the config's static shift, timesteps σ·1000. */
    public Schedule schedule(Request r) {
        return FlowMatchEulerScheduler.hunyuanVideo(schedulerConfig).schedule(r.steps(), null);
    }

    /** The latent shape of a request: {@code [B·n, C, (F−1)/4+1, H/8, W/8]}. */
    public long[] latentShape(Request r) {
        return new long[] {r.batch(), transformer.config().inChannels(), r.latentFrames(), r.height() / 8, r.width() / 8};
    }

    /** Prompt embeddings, mask and pooled vector, each prompt's rows repeated per video. Caller-owned. */
    public HunyuanPromptEncoder.Embeddings encode(Request r) {
        return text.encode(r.prompts(), r.videosPerPrompt(), r.maxSequenceLength());
    }

    /**
     * Initial latents in fp32 (as {@code prepare_latents(..., torch.float32)}): the request's latents, else
     * {@code randn} per video with its own CPU generator. Caller-owned.
     */
    public Tensor noise(Request r) {
        long[] shape = latentShape(r);
        if (r.latents() != null) {
            if (!Arrays.equals(Tensors.shape(r.latents()), shape)) {
                throw new IllegalArgumentException("latents have shape " + Arrays.toString(Tensors.shape(r.latents())) + ", expected "
                        + Arrays.toString(shape));
            }
            try (PointerScope scope = new PointerScope()) {
                return Tensors.keep(r.latents().to(ScalarType.Float).clone());
            }
        }
        return Noise.randnPerRow(shape, r.seedsPerVideo(), DType.F32);
    }

    /** The request's guidance directions as a plan over the batch (deltas computed once per request). */
    public ModulationGuidance guidance(Request r) {
        ModulationGuidance.Builder b = ModulationGuidance.builder();
        List<Tensor> made = new ArrayList<>();
        try {
            for (Direction d : r.guidance()) {
                d.layers().factors(transformer.numGuidedBlocks()); // reject out-of-range layers before any work
                Tensor delta = direction(d.pos(), d.neg());
                made.add(delta);
                b.add(new GuidanceTerm(d.label(), delta, d.w(), d.layers(), d.steps(), d.rowWeights()));
            }
        } catch (RuntimeException e) {
            made.forEach(Native::release);
            throw e;
        }
        return b.build();
    }

    /** {@code text_embedder(pooled(pos)) − text_embedder(pooled(neg))}, [1, D], owned by the caller. */
    public Tensor direction(String pos, String neg) {
        try (PointerScope scope = new PointerScope()) {
            Tensor p = text.pooled(List.of(pos));
            Tensor n = text.pooled(List.of(neg));
            return transformer.guidanceDelta(p, n);
        }
    }

    /**
     * The embedded guidance argument: {@code tensor([scale]·B, dtype=transformer_dtype) · 1000}, the product formed in
     * the transformer dtype (bf16: 6.0 → 6016). Owned by the caller.
     */
    public Tensor guidanceArgument(double scale, int batch) {
        try (PointerScope scope = new PointerScope()) {
            Tensor g = full(new long[] {batch}, new Scalar(scale), new TensorOptions(ScalarType.Float)).to(transformer.dtype().scalarType());
            return Tensors.keep(g.mul(new Scalar(1000.0)));
        }
    }

    /** The denoising loop from fp32 initial latents; returns the final latents (caller-owned) and fills stepNanos. */
    public Tensor denoise(Request r, HunyuanPromptEncoder.Embeddings emb, Tensor latents, ModulationGuidance guidance, Progress progress,
                          long[] stepNanos) {
        Schedule schedule = schedule(r);
        HunyuanVideoConfig c = transformer.config();
        if (!Arrays.equals(Tensors.shape(latents), latentShape(r)) || emb.promptEmbeds().size(0) != r.batch()) {
            throw new IllegalArgumentException("latents " + Arrays.toString(Tensors.shape(latents)) + " and " + emb.promptEmbeds().size(0)
                    + " prompt rows do not fit this request (expected " + Arrays.toString(latentShape(r)) + " and " + r.batch() + ")");
        }
        Tensor g = c.guidanceEmbeds() ? guidanceArgument(r.guidanceScale(), r.batch()) : null;
        Tensor x = latents;
        try (Rope rope = transformer.rope(r.latentFrames() / c.patchSizeT(), r.height() / 8 / c.patchSize(), r.width() / 8 / c.patchSize())) {
            if (!transformer.device().isCpu()) { // the Euler step runs where the velocity is
                try (PointerScope scope = new PointerScope()) {
                    x = Tensors.keep(latents.to(transformer.device().torchDevice(), latents.scalar_type()));
                }
            }
            for (int i = 0; i < schedule.steps(); i++) {
                long t0 = System.nanoTime();
                try (PointerScope step = new PointerScope()) {
                    // timestep = t.expand(B).to(latents.dtype): fp32 at step 0, the model-output dtype afterwards
                    Tensor t = full(new long[] {r.batch()}, new Scalar((double) schedule.timestep(i)), new TensorOptions(ScalarType.Float))
                            .to(x.scalar_type());
                    Tensor v = transformer.forward(x, t, emb.promptEmbeds(), emb.attentionMask(), emb.pooled(), g, guidance, i, rope, null);
                    Tensor next = schedule.step(v, i, x);                                                // [B, C, F', h, w]
                    v.close();
                    if (x != latents) x.close();
                    x = next;
                }
                long elapsed = System.nanoTime() - t0;
                if (stepNanos != null) stepNanos[i] = elapsed;
                if (!progress.onStep(i, schedule.steps(), schedule.sigma(i + 1), elapsed)) {
                    throw new CancellationException("generation cancelled after step " + (i + 1) + " of " + schedule.steps());
                }
            }
            if (x != latents) {
                Tensor done = x;
                x = latents; // handed to the caller, not released below
                return done;
            }
            try (PointerScope scope = new PointerScope()) {
                return Tensors.keep(x.clone());
            }
        } finally {
            if (x != latents) Native.release(x);
            Native.release(g);
        }
    }

    /**
     * Latents {@code [B, 16, F', h, w]} → frames {@code [B, F, 3, H, W]} in [0, 1], fp32 on the CPU:
     * {@code decode(latents.to(vae.dtype) / scaling_factor)} then {@code postprocess_video}. Caller-owned.
     */
    public Tensor decode(Tensor latents) {
        try (PointerScope scope = new PointerScope()) {
            Tensor decoded = vae.decodeScaled(latents, tiling);   // [B, 3, F, H, W] in [-1, 1]
            Tensor video = vae.toVideo(decoded);                  // [B, F, 3, H, W] in [0, 1]
            Tensor cpu = video.to(new Device("cpu"), ScalarType.Float);
            decoded.close();
            video.close();
            return Tensors.keep(cpu);
        }
    }

    // ---------------------------------------------------------------- all together

    public Result generate(Request r) {
        return generate(r, Progress.NONE);
    }

    public Result generate(Request r, Progress progress) {
        for (Direction d : r.guidance()) d.layers().factors(transformer.numGuidedBlocks()); // bad layers fail before any work
        long t0 = System.nanoTime();
        try (HunyuanPromptEncoder.Embeddings emb = encode(r); ModulationGuidance g = guidance(r)) {
            TimedGeneration.Output o = TimedGeneration.denoiseAndDecode(System.nanoTime() - t0, r.steps(), stepNanos -> {
                try (Tensor noise = noise(r)) {
                    return denoise(r, emb, noise, g, progress, stepNanos);
                }
            }, this::decode);
            return new Result(o.decoded(), o.latents(), o.timings());
        }
    }

    @Override
    public void close() {
        text.close();
        transformer.close();
        vae.close();
    }
}
