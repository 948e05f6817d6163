package io.mmdit4j.cosmos;

import com.fasterxml.jackson.databind.JsonNode;
import io.mmdit4j.sampling.StepTable;
import io.mmdit4j.runtime.Transfers;
import io.mmdit4j.guidance.ConditioningObserver;
import io.mmdit4j.guidance.Direction;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.io.DiffusersFolders;
import io.mmdit4j.io.JsonConfigs;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.pipeline.ClassifierFreeGuidance;
import io.mmdit4j.pipeline.FamilyPipeline;
import io.mmdit4j.pipeline.GenerationOption;
import io.mmdit4j.pipeline.GenerationSettings;
import io.mmdit4j.pipeline.InvalidRequestException;
import io.mmdit4j.pipeline.LatentSpace;
import io.mmdit4j.pipeline.PooledAdapterFile;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Offloadable;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.sampling.Denoiser;
import io.mmdit4j.sampling.DenoisedEulerSampler;
import io.mmdit4j.sampling.KarrasSchedule;
import io.mmdit4j.sampling.Noise;
import io.mmdit4j.sampling.Sampler;
import io.mmdit4j.sampling.Schedule;
import io.mmdit4j.sampling.StepListener;
import io.mmdit4j.vae.AutoencoderKL;
import io.mmdit4j.vae.wan.AutoencoderKLWan;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

import static org.bytedeco.pytorch.global.torch.full;

/**
 * COSMOS text-to-image as the modulation-guidance paper samples it (its {@code FlowMatchingSolver}, not diffusers'
 * {@code Cosmos2TextToImagePipeline}): prompts → T5 (512 tokens, rows past the prompt zeroed) and CLIP-L pooled → start latent
 * {@code σ_max·noise} → Karras sigmas (80 → 0.002, ρ 7, terminal 0) → per step {@code t = σ/(σ+1)}, the model on
 * {@code x·(1−t)}, the denoised prediction {@code x0 = (1−t)·x − t·F}, CFG in x0 form {@code x0_c + cfg·(x0_c − x0_u)} with
 * the unconditional pass run separately on the negative prompt (default {@code ""}), the Euler step on x0
 * ({@link DenoisedEulerSampler}) → {@code latents·std/σ_data + mean} → Wan VAE → frame 0 in [0, 1].
 *
 * <p>Modulation guidance goes through the pooled-CLIP adapter; by default only the conditional pass is guided
 * ({@code CfgRows.COND}), and the unconditional pass takes the pooled term in the blocks the conditional plan reaches
 * (COSMOS's rule, see {@link CosmosTransformer}).
 */
public final class CosmosPipeline implements FamilyPipeline<CosmosPipeline.Conditioning> {
    /** T5 + CLIP-L, resident or ({@code --offload text}) released after each request's text; null: embeddings are given (golden runner, training). */
    private final Offloadable<CosmosTextEncoders> text;
    private final CosmosTransformer transformer;
    private final AutoencoderKLWan vae;
    private final SchedulerConfig scheduler;
    private final DType dtype;

    /**
     * The Cosmos-Predict2 scheduler config the reference sampler reads ({@code FlowMatchEulerDiscreteScheduler} with
     * {@code use_karras_sigmas}): σ range, {@code sigma_data} (the latents' scale), {@code num_train_timesteps}.
     */
    public record SchedulerConfig(double sigmaMin, double sigmaMax, double sigmaData, int numTrainTimesteps) {
        public static final double RHO = 7.0;

        /** nvidia/Cosmos-Predict2-2B-Text2Image's scheduler. */
        public static SchedulerConfig predict2() {
            return new SchedulerConfig(0.002, 80.0, 1.0, 1000);
        }

        public static SchedulerConfig read(Path json) {
            JsonNode c = JsonConfigs.readObject(json, "scheduler config");
            if (!JsonConfigs.boolOr(c, json, "use_karras_sigmas", false)) {
                throw new ModelFormatException(json + ": use_karras_sigmas is not true: not a Cosmos-Predict2 scheduler (the reference sampler uses "
                        + "Karras sigmas)");
            }
            return new SchedulerConfig(JsonConfigs.doubleOr(c, json, "sigma_min", 0.002), JsonConfigs.doubleOr(c, json, "sigma_max", 80.0),
                    JsonConfigs.doubleOr(c, json, "sigma_data", 1.0), JsonConfigs.intOr(c, json, "num_train_timesteps", 1000));
        }

        public Schedule schedule(int steps) {
            return KarrasSchedule.of(steps, sigmaMin, sigmaMax, RHO, numTrainTimesteps);
        }
    }

    /**
     * One request's conditioning: per image the T5 states and CLIP pooled vector, and with CFG those of the negative prompts.
     *
     * @param pooled         [B, P], or null for no pooled term (the reference's {@code apply_clip_pooled=False})
     * @param uncondText     [B, L, d] with CFG, else null
     * @param uncondPooled   [B, P] with CFG (null: no pooled term in the unconditional pass)
     */
    public record Conditioning(Tensor text, Tensor pooled, Tensor uncondText, Tensor uncondPooled) implements AutoCloseable {
        @Override
        public void close() {
            Native.release(text);
            Native.release(pooled);
            Native.release(uncondText);
            Native.release(uncondPooled);
        }
    }

    /** The adapter file loaded (recorded in every settings record), or null. */
    private Path adapterFile;

    public CosmosPipeline(CosmosTextEncoders text, CosmosTransformer transformer, AutoencoderKLWan vae, SchedulerConfig scheduler) {
        this(text == null ? null : Offloadable.resident("COSMOS text encoders", () -> text), transformer, vae, scheduler);
    }

    private CosmosPipeline(Offloadable<CosmosTextEncoders> encoders, CosmosTransformer transformer, AutoencoderKLWan vae, SchedulerConfig scheduler) {
        CosmosTextEncoders text = encoders == null ? null : encoders.acquire(); // offloaded: loaded now, released after the first request's text
        if (text != null && text.textDim() != transformer.config().textEmbedDim()) {
            throw new ModelFormatException("the T5 gives width " + text.textDim() + ", the transformer expects text_embed_dim "
                    + transformer.config().textEmbedDim());
        }
        if (text != null && transformer.adapter() != null && text.pooledDim() != transformer.pooledDim()) {
            throw new ModelFormatException("the CLIP gives pooled width " + text.pooledDim() + ", the pooled-CLIP adapter expects "
                    + transformer.pooledDim());
        }
        this.text = encoders;
        this.transformer = transformer;
        this.vae = vae;
        this.scheduler = scheduler;
        this.dtype = transformer.dtype();
    }

    /**
     * A Cosmos-Predict2 diffusers folder ({@code model_index.json} {@code Cosmos2TextToImagePipeline}: transformer/, vae/,
     * scheduler/, text_encoder/ + tokenizer/ with T5) with the pooled-CLIP adapter file and the folder of the CLIP-L.
     *
     * @param adapter    the adapter (see {@link CosmosTransformer#load(Path, Path, DType, DeviceSpec)}), or null for the base model
     * @param clipFolder a folder with CLIP-L ({@code text_encoder/} + {@code tokenizer/}, or {@code _2} ones), or null when the
     *                   model has no adapter (then no CLIP is loaded and there is no pooled term)
     */
    public static CosmosPipeline load(Path folder, Path adapter, Path clipFolder, DType dtype, DeviceSpec device) {
        return load(folder, adapter, clipFolder, dtype, device, false);
    }

    /** As {@link #load(Path, Path, Path, DType, DeviceSpec)}; {@code offloadText}: the text encoders are released after each request's text. */
    public static CosmosPipeline load(Path folder, Path adapter, Path clipFolder, DType dtype, DeviceSpec device, boolean offloadText) {
        DiffusersFolders.checkModelIndex(folder, CosmosFamily.CLASS_NAME, "a Cosmos-Predict2 diffusers folder");
        return Modules.loading(loaded -> {
            CosmosTransformer t = Modules.track(loaded, CosmosTransformer.load(folder.resolve("transformer"), adapter, dtype, device));
            Offloadable<CosmosTextEncoders> text = Modules.track(loaded, Offloadable.of("COSMOS text encoders",
                    () -> CosmosTextEncoders.load(folder, clipFolder != null ? clipFolder : folder, dtype, device), offloadText));
            AutoencoderKLWan vae = Modules.track(loaded, AutoencoderKLWan.load(folder.resolve("vae"), dtype, device));
            Path sched = folder.resolve("scheduler/scheduler_config.json");
            SchedulerConfig sc = Files.isRegularFile(sched) ? SchedulerConfig.read(sched) : SchedulerConfig.predict2();
            return new CosmosPipeline(text, t, vae, sc);
        });
    }

    public CosmosTransformer transformer() { return transformer; }
    public AutoencoderKLWan vae() { return vae; }
    /** The text encoders (loaded again if they were offloaded), or null when built without them. */
    public CosmosTextEncoders textEncoders() { return text == null ? null : text.acquire(); }

    /** The text encoders as a part that may be offloaded ({@code --offload text}), or null. */
    public Offloadable<CosmosTextEncoders> textEncodersPart() { return text; }

    @Override
    public void textEncodersDone() {
        if (text != null) text.release();
    }
    public SchedulerConfig schedulerConfig() { return scheduler; }

    @Override public int numGuidedBlocks() { return transformer.numGuidedBlocks(); }
    @Override public DType dtype() { return dtype; }
    @Override public DeviceSpec device() { return transformer.device(); }

    @Override
    public Set<Class<? extends GenerationOption>> supportedOptions() {
        return CosmosFamily.OPTIONS;
    }

    /** Records {@code file} as the adapter this pipeline was loaded from (null: none, or not from a file); returns this. */
    CosmosPipeline withAdapterFile(Path file) {
        this.adapterFile = transformer.adapter() == null ? null : file;
        return this;
    }

    /** Every record names the adapter file the pipeline was loaded with, so that {@code --from} loads it again. */
    @Override
    public GenerationSettings complete(GenerationSettings s) {
        return adapterFile != null && s.option(PooledAdapterFile.class) == null ? s.withOption(new PooledAdapterFile(adapterFile)) : s;
    }

    @Override
    public void validate(GenerationSettings s) {
        CosmosFamily.checkSize(s.width(), s.height());
        PooledAdapterFile asked = s.option(PooledAdapterFile.class);
        if (asked != null && !asked.sameFile(adapterFile)) {
            throw new InvalidRequestException("the settings name the pooled-CLIP adapter " + asked.file() + ", but this pipeline was loaded with "
                    + (adapterFile == null ? "none" : adapterFile) + ": load it with --adapter " + asked.file());
        }
        if (transformer.adapter() == null) {
            for (Direction d : s.guidance()) {
                if (d.w() != 0) {
                    throw new InvalidRequestException("modulation guidance on COSMOS needs the pooled-CLIP adapter (yresearch/cosmos-pooled): give "
                            + "--adapter FILE (pooled_adapter.safetensors or checkpoint_<step>.pt), or put it in the model folder");
                }
            }
        }
    }

    // ---------------------------------------------------------------- steps

    /** Karras sigmas with the terminal 0 ({@link KarrasSchedule}). */
    @Override
    public Schedule schedule(GenerationSettings s) {
        return scheduler.schedule(s.steps());
    }

    @Override
    public Sampler sampler(GenerationSettings s, Schedule schedule) {
        return new DenoisedEulerSampler(schedule);
    }

    @Override
    public Conditioning encode(GenerationSettings s) {
        requireText();
        boolean pooled = transformer.adapter() != null;
        CosmosTextEncoders t = text.acquire();
        CosmosTextEncoders.Embeddings pos = t.encode(s.prompts(), s.imagesPerPrompt(), s.maxSequenceLength());
        CosmosTextEncoders.Embeddings neg = null;
        try {
            if (cfg(s)) neg = t.encode(s.option(ClassifierFreeGuidance.class).negatives(s.prompts().size()), s.imagesPerPrompt(), s.maxSequenceLength());
            return new Conditioning(pos.text(), pooled ? pos.pooled() : release(pos.pooled()), neg == null ? null : neg.text(),
                    neg == null ? null : pooled ? neg.pooled() : release(neg.pooled()));
        } catch (RuntimeException e) {
            pos.close();
            if (neg != null) neg.close();
            throw e;
        }
    }

    private static Tensor release(Tensor t) {
        Native.release(t);
        return null;
    }

    /** {@code TE(CLIP(pos)) − TE(CLIP(neg))} through the adapter, [1, 3D], owned by the caller. */
    @Override
    public Tensor delta(String pos, String neg) {
        requireText();
        try (PointerScope scope = new PointerScope()) {
            CosmosTextEncoders t = text.acquire();
            return transformer.guidanceDelta(t.pooled(List.of(pos)), t.pooled(List.of(neg)));
        }
    }

    /** The start latent {@code σ_max·noise} [B, 16, 1, H/8, W/8] in float32 (noise: the request's, else seeded per image). Caller-owned. */
    @Override
    public Tensor noise(GenerationSettings s) {
        long[] shape = latentShape(s.images(), s.height(), s.width());
        try (PointerScope scope = new PointerScope()) {
            Tensor n;
            if (s.initialNoise() != null) {
                if (!Arrays.equals(Tensors.shape(s.initialNoise()), shape)) {
                    throw new InvalidRequestException("initial noise has shape " + Arrays.toString(Tensors.shape(s.initialNoise())) + ", expected "
                            + Arrays.toString(shape));
                }
                n = s.initialNoise().to(ScalarType.Float);
            } else {
                n = io.mmdit4j.runtime.Scopes.adopt(Noise.randnPerRow(shape, s.seeds(), DType.F32)); // owned: to the scope
            }
            return Tensors.keep(n.mul(new Scalar(scheduler.sigmaMax())));
        }
    }

    /**
     * Image-to-image: the Wan VAE encodes each init picture as a one-frame video; a posterior sample is normalised as the
     * Cosmos2 pipelines normalise latents ({@code (z − latents_mean)/latents_std·sigma_data}); the sampler's latents are EDM
     * ones, so the start is {@code image_lat + σ₀·noise} ({@link LatentSpace.Noising#EDM}).
     */
    @Override
    public LatentSpace latentSpace() {
        return new LatentSpace.Parts(DType.F32, s -> latentShape(s.images(), s.height(), s.width()), x -> x,
                s -> new int[] {s.width(), s.height()}, LatentSpace.Noising.EDM) {
            @Override
            public AutoencoderKL.Encoded encode(Tensor pixels, GenerationSettings s) {
                try (Tensor video = pixels.unsqueeze(2)) {                                    // [n, 3, 1, H, W]
                    return vae.encode(video);
                }
            }

            @Override
            public Tensor scale(Tensor sample) {
                return vae.normalize(sample, scheduler.sigmaData());
            }
        };
    }

    /** {@code [images, in_channels, 1, H/8, W/8]}. */
    public long[] latentShape(int images, int height, int width) {
        return new long[] {images, transformer.config().inChannels(), 1, height / 8, width / 8};
    }

    @Override
    public Velocity velocity(GenerationSettings s, Schedule schedule, Conditioning cond, ModulationGuidance guidance, ConditioningObserver observer) {
        ClassifierFreeGuidance c = s.option(ClassifierFreeGuidance.class);
        transformer.prepareRope(latentShape(s.images(), s.height(), s.width())); // before the loop: no step moves a table
        return denoised(schedule, cond, guidance, cfg(s) ? c.scale() : 1.0, s.images(), observer);
    }

    /**
     * The denoised prediction at each step (the reference's {@code flow_matching_sampling} body before its Euler step):
     * with {@code cfgScale > 1} the plan has {@code 2·images} rows {@code [unconditional; conditional]} and each half runs as
     * its own forward. The latents stay float32; the model runs in its dtype.
     */
    public Velocity denoised(Schedule schedule, Conditioning cond, ModulationGuidance guidance, double cfgScale, int images,
                             ConditioningObserver observer) {
        boolean cfg = cfgScale > 1;
        if (cond.text().size(0) != images || (cfg && (cond.uncondText() == null || cond.uncondText().size(0) != images))) {
            throw new IllegalArgumentException("conditioning rows do not match " + images + " images" + (cfg ? " with CFG" : ""));
        }
        int n = transformer.numGuidedBlocks();
        // the text states and every step's timestep go to the device once, here: a step copies nothing from the host
        DeviceSpec device = transformer.device();
        Tensor[] placed = new Tensor[4];
        StepTable timesteps;
        try {
            placed[0] = Transfers.toOwned(cond.text(), device);
            placed[1] = Transfers.toOwned(cond.pooled(), device);
            placed[2] = cfg ? Transfers.toOwned(cond.uncondText(), device) : null;
            placed[3] = cfg ? Transfers.toOwned(cond.uncondPooled(), device) : null;
            timesteps = StepTable.of(schedule.steps(), i -> {
                float sigma = schedule.sigma(i);
                float t = sigma / (sigma + 1f);
                return full(new long[] {images}, new Scalar((double) t), new TensorOptions(ScalarType.Float)).to(dtype.scalarType());
            }, device);
        } catch (RuntimeException e) {
            for (Tensor t : placed) Native.release(t);
            throw e;
        }
        StepTable ts = timesteps;
        Tensor text = placed[0], pooled = placed[1], uncondText = placed[2], uncondPooled = placed[3];
        ModulationGuidance condPlan = cfg ? guidance.rows(images, images) : guidance;
        ModulationGuidance uncondPlan = cfg ? guidance.rows(0, images) : null;
        Scalar scale = new Scalar(cfgScale);
        return new Velocity() {
            @Override
            public Tensor at(Tensor x, int i) {
                try (PointerScope scope = new PointerScope()) {
                    float sigma = schedule.sigma(i);
                    float t = sigma / (sigma + 1f);                                     // float32, as the reference's 0-dim tensors
                    float cSkip = 1f - t, cOut = -t;
                    Tensor skipped = x.to(ScalarType.Float).mul(new Scalar(cSkip));      // c_skip·x = c_in·x (both 1 − t)
                    Tensor in = skipped.to(dtype.scalarType());                           // the model input in its dtype
                    Tensor tstep = ts.at(i);                                                // full([B], t).to(dtype), on the device
                    Tensor fc = transformer.forward(in, tstep, text, null, pooled, condPlan, i, null, observer);
                    Tensor x0 = skipped.add(fc.to(ScalarType.Float).mul(new Scalar(cOut))).to(dtype.scalarType());
                    fc.close();
                    if (cfg) {
                        boolean[][] blocks = CosmosTransformer.pooledBlocks(condPlan, i, images, n); // the unconditional pass follows them
                        Tensor fu = transformer.forward(in, tstep, uncondText, null, uncondPooled, uncondPlan, i, blocks, null);
                        Tensor x0u = skipped.add(fu.to(ScalarType.Float).mul(new Scalar(cOut))).to(dtype.scalarType());
                        fu.close();
                        x0 = x0.add(x0.sub(x0u).mul(scale));                             // x0_c + cfg·(x0_c − x0_u)
                    }
                    return Tensors.keep(x0);
                }
            }

            @Override
            public void close() {
                scale.close();
                ts.close();
                Native.release(text);
                Native.release(pooled);
                Native.release(uncondText);
                Native.release(uncondPooled);
                if (cfg) {
                    condPlan.close();
                    uncondPlan.close();
                }
            }
        };
    }

    /**
     * The whole sampler on given conditioning (what {@link io.mmdit4j.pipeline.Pipeline#generate} runs between encoding and
     * decoding): final latents [B, 16, 1, h, w] float32, owned by the caller.
     *
     * @param noise N(0, 1) noise; the start latent is {@code σ_max·noise}
     */
    public Tensor sample(Tensor noise, Conditioning cond, ModulationGuidance guidance, int steps, double cfgScale, StepListener listener) {
        Schedule schedule = scheduler.schedule(steps);
        try (PointerScope scope = new PointerScope()) {
            Tensor start = noise.to(ScalarType.Float).mul(new Scalar(scheduler.sigmaMax()));
            try (Velocity v = denoised(schedule, cond, guidance, cfgScale, (int) noise.size(0), null)) {
                return Denoiser.run(new DenoisedEulerSampler(schedule), start, v, device(), listener, null);
            }
        }
    }

    /** Final latents → images [B, 3, H, W] in [0, 1], fp32 on the CPU (de-normalised with {@code sigma_data}, Wan VAE, frame 0). */
    /** ComfyUI's Wan 2.1 latent-to-RGB preview (the VAE's normalised latents), {@code [B, 3, H/8, W/8]}. */
    @Override
    public Tensor preview(Tensor latents, GenerationSettings s) {
        return latents.size(1) == 16 ? io.mmdit4j.pipeline.LatentPreview.WAN21.firstFrameRgb(latents) : null;
    }

    @Override
    public Tensor decode(Tensor latents, GenerationSettings s) {
        return vae.decodeToImages(latents, scheduler.sigmaData());
    }

    private void requireText() {
        if (text == null) throw new IllegalStateException("this COSMOS pipeline was built without text encoders (embeddings must be given)");
    }

    @Override
    public void close() {
        Modules.closeAll(text, transformer, vae);
    }
}
