package io.mmdit4j.hunyuan;

import io.mmdit4j.sampling.StepTable;
import io.mmdit4j.runtime.Transfers;
import io.mmdit4j.guidance.ConditioningObserver;
import io.mmdit4j.guidance.GuidancePlan;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.hunyuan.vae.AutoencoderKLHunyuanVideo;
import io.mmdit4j.io.DiffusersFolders;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.nn.Rope;
import io.mmdit4j.pipeline.EmbeddedGuidance;
import io.mmdit4j.pipeline.FamilyPipeline;
import io.mmdit4j.pipeline.GenerationOption;
import io.mmdit4j.pipeline.GenerationSettings;
import io.mmdit4j.pipeline.InvalidRequestException;
import io.mmdit4j.pipeline.LatentSpace;
import io.mmdit4j.pipeline.VideoFrames;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Offloadable;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.sampling.FlowMatchEulerScheduler;
import io.mmdit4j.sampling.FlowMatchSchedulerConfig;
import io.mmdit4j.sampling.Schedule;
import io.mmdit4j.text.llama.HunyuanPromptEncoder;
import io.mmdit4j.vae.AutoencoderKL;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;

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
public final class HunyuanVideoPipeline implements FamilyPipeline<HunyuanPromptEncoder.Embeddings> {
    /** Llama + CLIP-L: resident, or with {@code --offload text} released after each request's text and loaded again by the next. */
    private final Offloadable<HunyuanPromptEncoder> text;
    private final HunyuanVideoTransformer transformer;
    private final AutoencoderKLHunyuanVideo vae;
    private final FlowMatchSchedulerConfig schedulerConfig;
    private final AutoencoderKLHunyuanVideo.Tiling tiling;

    /** HunyuanVideo's shipped scheduler config: static shift 7.0, no dynamic shifting. */
    public static FlowMatchSchedulerConfig defaultSchedulerConfig() {
        return FlowMatchSchedulerConfig.sd3().withShift(7.0);
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



    /** Takes ownership of the three models; the VAE decodes with {@code tiling} (diffusers' default frame chunking). */
    public HunyuanVideoPipeline(HunyuanPromptEncoder text, HunyuanVideoTransformer transformer, AutoencoderKLHunyuanVideo vae,
                                FlowMatchSchedulerConfig schedulerConfig, AutoencoderKLHunyuanVideo.Tiling tiling) {
        this(Offloadable.resident("HunyuanVideo text encoders", () -> text), transformer, vae, schedulerConfig, tiling);
    }

    private HunyuanVideoPipeline(Offloadable<HunyuanPromptEncoder> text, HunyuanVideoTransformer transformer, AutoencoderKLHunyuanVideo vae,
                                 FlowMatchSchedulerConfig schedulerConfig, AutoencoderKLHunyuanVideo.Tiling tiling) {
        checkWidths("HunyuanVideo pipeline", text.acquire(), transformer, vae); // offloaded: loaded now, released after the first request's text
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
        return load(folder, dtype, device, false);
    }

    /** As {@link #load(Path, DType, DeviceSpec)}, optionally with the transformer's blocks offloaded ({@link HunyuanVideoTransformer#offload}). */
    public static HunyuanVideoPipeline load(Path folder, DType dtype, DeviceSpec device, boolean offloadBlocks) {
        return load(folder, dtype, device, offloadBlocks, false);
    }

    /** As {@link #load(Path, DType, DeviceSpec, boolean)}; {@code offloadText}: the text encoders are released after each request's text. */
    public static HunyuanVideoPipeline load(Path folder, DType dtype, DeviceSpec device, boolean offloadBlocks, boolean offloadText) {
        DiffusersFolders.checkModelIndex(folder, HunyuanVideoFamily.CLASS_NAME, "a diffusers HunyuanVideo folder");
        DiffusersFolders.requireParts(folder, "a diffusers HunyuanVideo folder", "transformer", "vae");
        FlowMatchSchedulerConfig sched = Files.isDirectory(folder.resolve("scheduler"))
                ? FlowMatchSchedulerConfig.fromFile(folder.resolve("scheduler")) : defaultSchedulerConfig();
        return Modules.loading(loaded -> {
            HunyuanVideoTransformer transformer = track(loaded, HunyuanVideoTransformer.load(folder.resolve("transformer"), dtype, device, null, offloadBlocks));
            AutoencoderKLHunyuanVideo vae = track(loaded, AutoencoderKLHunyuanVideo.load(folder.resolve("vae"), null, dtype, device));
            Offloadable<HunyuanPromptEncoder> text = track(loaded,
                    Offloadable.of("HunyuanVideo text encoders", () -> HunyuanPromptEncoder.load(folder, dtype, device), offloadText));
            return new HunyuanVideoPipeline(text, transformer, vae, sched, AutoencoderKLHunyuanVideo.Tiling.DIFFUSERS_DEFAULT);
        });
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
    /** The text encoders (loaded again if they were offloaded). */
    public HunyuanPromptEncoder textEncoder() { return text.acquire(); }

    /** The text encoders as a part that may be offloaded ({@code --offload text}). */
    public Offloadable<HunyuanPromptEncoder> textEncodersPart() { return text; }

    @Override
    public void textEncodersDone() { text.release(); }
    public FlowMatchSchedulerConfig schedulerConfig() { return schedulerConfig; }

    @Override public int numGuidedBlocks() { return transformer.numGuidedBlocks(); }
    @Override public DType dtype() { return transformer.dtype(); }
    @Override public DeviceSpec device() { return transformer.device(); }

    @Override
    public Set<Class<? extends GenerationOption>> supportedOptions() {
        return HunyuanVideoFamily.OPTIONS;
    }

    /** The request's frame count (its {@link VideoFrames}). */
    static int frames(GenerationSettings s) {
        VideoFrames v = s.option(VideoFrames.class);
        if (v == null) throw new InvalidRequestException("a HunyuanVideo generation needs a frame count (--frames)");
        return v.frames();
    }

    /** Latent frames {@code (F − 1)/4 + 1}. */
    static int latentFrames(GenerationSettings s) {
        return (frames(s) - 1) / 4 + 1;
    }

    // ---------------------------------------------------------------- steps

    /** {@code linspace(1, 0, N+1)[:-1]} with the config's static shift, timesteps σ·1000. */
    @Override
    public Schedule schedule(GenerationSettings s) {
        return new FlowMatchEulerScheduler(schedulerConfig, HunyuanVideoFamily.SIGMA_SPACING).schedule(s.steps(), null);
    }

    /**
     * Image-to-video in diffusers' img2img manner (there is no HunyuanVideo video-to-video pipeline in diffusers): each
     * init picture is encoded as a still video of the request's frames (the causal VAE; diffusers' encode tiling), a
     * posterior sample is scaled by {@code scaling_factor}, and the start is {@code σ₀·noise + (1 − σ₀)·image_lat}: the
     * frames start alike and the denoising moves them apart, more the higher the strength.
     */
    @Override
    public LatentSpace latentSpace() {
        return new LatentSpace.Parts(DType.F32, this::latentShape, x -> x, s -> new int[] {s.width(), s.height()}, LatentSpace.Noising.FLOW) {
            @Override
            public AutoencoderKL.Encoded encode(Tensor pixels, GenerationSettings s) {
                int frames = frames(s);
                try (PointerScope scope = new PointerScope()) {
                    Tensor still = pixels.unsqueeze(2).expand(new long[] {-1, -1, frames, -1, -1}).contiguous(); // [n, 3, F, H, W]
                    return vae.encode(still);
                }
            }

            @Override
            public Tensor scale(Tensor sample) {
                return vae.scaleLatents(sample);
            }
        };
    }

    /** The latent shape of a request: {@code [B·n, C, (F−1)/4+1, H/8, W/8]}. */
    public long[] latentShape(GenerationSettings s) {
        return new long[] {s.images(), transformer.config().inChannels(), latentFrames(s), s.height() / 8, s.width() / 8};
    }

    /** Prompt embeddings, mask and pooled vector, each prompt's rows repeated per video. Caller-owned. */
    @Override
    public HunyuanPromptEncoder.Embeddings encode(GenerationSettings s) {
        return text.acquire().encode(s.prompts(), s.imagesPerPrompt(), s.maxSequenceLength());
    }

    /**
     * Initial latents in fp32 (as {@code prepare_latents(..., torch.float32)}): the request's latents, else
     * {@code randn} per video with its own CPU generator. Caller-owned.
     */
    @Override
    public Tensor noise(GenerationSettings s) {
        long[] shape = latentShape(s);
        return s.initialLatents(shape, DType.F32);
    }

    /** {@code text_embedder(pooled(pos)) − text_embedder(pooled(neg))}, [1, D], owned by the caller. */
    @Override
    public Tensor delta(String pos, String neg) {
        HunyuanPromptEncoder t = text.acquire();
        return GuidancePlan.direction(t::pooled, transformer::guidanceDelta, pos, neg);
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

    /** The forward at each step: {@code timestep = t.expand(B).to(latents.dtype)} (fp32 at step 0, the model-output dtype afterwards). */
    @Override
    public Velocity velocity(GenerationSettings s, Schedule schedule, HunyuanPromptEncoder.Embeddings emb, ModulationGuidance guidance,
                             ConditioningObserver observer) {
        HunyuanVideoConfig c = transformer.config();
        int batch = s.images();
        if (emb.promptEmbeds().size(0) != batch) {
            throw new IllegalArgumentException(emb.promptEmbeds().size(0) + " prompt rows do not fit this request (expected " + batch + ")");
        }
        HunyuanVideoTransformer.requireRealTokens(emb.attentionMask()); // once, on the host copy, before anything moves
        EmbeddedGuidance eg = s.option(EmbeddedGuidance.class);
        DeviceSpec device = transformer.device();
        // every per-request input goes to the device once, here: a step copies nothing from the host
        Tensor g = null, prompt = null, mask = null, pooled = null;
        StepTable timesteps = null;
        Rope rope;
        try {
            if (c.guidanceEmbeds()) {
                try (PointerScope scope = new PointerScope()) { // the host argument dies here; its device copy is owned
                    g = Transfers.toOwned(io.mmdit4j.runtime.Scopes.adopt(guidanceArgument(eg == null ? 6.0 : eg.scale(), batch)), device);
                }
            }
            prompt = Transfers.toOwned(emb.promptEmbeds(), device);
            mask = Transfers.toOwned(emb.attentionMask(), device);
            pooled = Transfers.toOwned(emb.pooled(), device);
            timesteps = StepTable.timesteps(schedule, batch, device);
            rope = transformer.rope(latentFrames(s) / c.patchSizeT(), s.height() / 8 / c.patchSize(), s.width() / 8 / c.patchSize());
        } catch (RuntimeException e) {
            Native.release(g);
            Native.release(prompt);
            Native.release(mask);
            Native.release(pooled);
            if (timesteps != null) timesteps.close();
            throw e;
        }
        Tensor gArg = g, txt = prompt, msk = mask, pool = pooled;
        StepTable ts = timesteps;
        return new Velocity() {
            @Override
            public Tensor at(Tensor x, int i) {
                try (PointerScope scope = new PointerScope()) {
                    Tensor t = ts.at(i).to(x.scalar_type()); // a cast on the device, no copy
                    return transformer.forward(x, t, txt, msk, pool, gArg, guidance, i, rope, observer);
                }
            }

            @Override
            public void close() {
                rope.close();
                ts.close();
                Native.release(gArg);
                Native.release(txt);
                Native.release(msk);
                Native.release(pool);
            }
        };
    }

    /**
     * Latents {@code [B, 16, F', h, w]} → frames {@code [B, F, 3, H, W]} in [0, 1], fp32 on the CPU:
     * {@code decode(latents.to(vae.dtype) / scaling_factor)} then {@code postprocess_video}. Caller-owned.
     */
    /** ComfyUI's HunyuanVideo latent-to-RGB preview of the first latent frame, {@code [B, 3, H/8, W/8]}. */
    @Override
    public Tensor preview(Tensor latents, GenerationSettings s) {
        return latents.size(1) == 16 ? io.mmdit4j.pipeline.LatentPreview.HUNYUAN_VIDEO.firstFrameRgb(latents) : null;
    }

    @Override
    public Tensor decode(Tensor latents, GenerationSettings s) {
        try (PointerScope scope = new PointerScope()) {
            Tensor decoded = vae.decodeScaled(latents, tiling);   // [B, 3, F, H, W] in [-1, 1]
            Tensor video = vae.toVideo(decoded);                  // [B, F, 3, H, W] in [0, 1]
            Tensor cpu = io.mmdit4j.runtime.Transfers.toHost(video, ScalarType.Float); // stays shapes-only on meta
            decoded.close();
            video.close();
            return Tensors.keep(cpu);
        }
    }

    @Override
    public void close() {
        Modules.closeAll(text, transformer, vae);
    }
}
