package io.mmdit4j.hidream;

import io.mmdit4j.guidance.BlockConditioning;
import io.mmdit4j.guidance.ConditioningObserver;
import io.mmdit4j.guidance.GuidancePlan;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.guidance.ModulationVisitor;
import io.mmdit4j.io.DiffusersFolders;
import io.mmdit4j.io.JsonConfigs;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.pipeline.ClassifierFreeGuidance;
import io.mmdit4j.pipeline.FamilyPipeline;
import io.mmdit4j.pipeline.GenerationOption;
import io.mmdit4j.pipeline.GenerationSettings;
import io.mmdit4j.pipeline.InitImage;
import io.mmdit4j.pipeline.InpaintMask;
import io.mmdit4j.pipeline.InvalidRequestException;
import io.mmdit4j.pipeline.LatentPreview;
import io.mmdit4j.pipeline.LatentSpace;
import io.mmdit4j.pipeline.NegativePrompts;
import io.mmdit4j.pipeline.SampleSize;
import io.mmdit4j.pipeline.SchedulerShift;
import io.mmdit4j.pipeline.StepNoise;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Offloadable;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.runtime.Transfers;
import io.mmdit4j.sampling.FlowMatchLcmScheduler;
import io.mmdit4j.sampling.FlowMatchSchedulerConfig;
import io.mmdit4j.sampling.Noise;
import io.mmdit4j.sampling.Sampler;
import io.mmdit4j.sampling.Schedule;
import io.mmdit4j.sampling.StepTable;
import io.mmdit4j.sampling.UniPcMultistepScheduler;
import io.mmdit4j.vae.AutoencoderKL;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

import static org.bytedeco.pytorch.global.torch.cat;

/**
 * HiDream-I1 (Full, Dev, Fast) text-to-image as diffusers' {@code HiDreamImagePipeline.__call__} (0.35): the request
 * size resized to the model's area keeping its aspect ratio ({@link SampleSize}), prompts (and with CFG, negative
 * prompts) → CLIP-L + CLIP-G pooled, T5 with its mask, every Llama-3.1 hidden state → seeded latents
 * {@code [B, 16, 2·⌊H/16⌋, 2·⌊W/16⌋]} in the model dtype → the model's scheduler (Full: UniPC with flow sigmas; Fast /
 * Dev: FlowMatchLCM with fresh noise every step) on the flow velocity {@code v = −transformer(...)} (with CFG
 * {@code v_u + s·(v_c − v_u)} on the batch {@code [negative; positive]}), modulation guidance in every block the schedule
 * selects and always in the final layer → VAE ({@code z/0.3611 + 0.1159}) → images in [0, 1].
 *
 * <p>With text offloading the encoders load one at a time for the text phase, and are released before the transformer
 * loads; the transformer is released again when the next request's text phase starts.
 */
public final class HiDreamPipeline implements FamilyPipeline<HiDreamPipeline.Conditioning> {
    static final Set<Class<? extends GenerationOption>> OPTIONS = Set.of(ClassifierFreeGuidance.class, SchedulerShift.class, SampleSize.class,
            StepNoise.class, InitImage.class, InpaintMask.class);

    /** The model's scheduler: FlowMatchLCM (Fast, Dev) or UniPC with flow sigmas (Full). */
    public sealed interface Scheduler permits Lcm, UniPc {
        Schedule schedule(int steps, Double shift);

        /** The recorded sampler name. */
        String name();
    }

    /** {@code FlowMatchLCMScheduler} (Fast: shift 3, Dev: shift 6). */
    public record Lcm(FlowMatchSchedulerConfig config) implements Scheduler {
        @Override
        public Schedule schedule(int steps, Double shift) {
            return new FlowMatchLcmScheduler(shift == null ? config : config.withShift(shift)).schedule(steps, null);
        }

        @Override
        public String name() {
            return "flow_match_lcm";
        }
    }

    /** {@code UniPCMultistepScheduler} with flow sigmas (Full: flow_shift 3). */
    public record UniPc(UniPcMultistepScheduler.Config config) implements Scheduler {
        @Override
        public Schedule schedule(int steps, Double shift) {
            return new UniPcMultistepScheduler(shift == null ? config : config.withShift(shift)).schedule(steps);
        }

        @Override
        public String name() {
            return "unipc";
        }
    }

    /**
     * The scheduler of a diffusers HiDream folder's {@code scheduler/}: {@code FlowMatchLCMScheduler} or
     * {@code UniPCMultistepScheduler} as configured; HiDream's own classes as the original repositories name them
     * ({@code FlowUniPCMultistepScheduler}: UniPC with flow sigmas and its {@code shift}; {@code FlashFlowMatchEulerDiscreteScheduler}
     * / {@code FlowMatchEulerDiscreteScheduler}: FlowMatchLCM with its {@code shift}, what diffusers' HiDream docs use).
     */
    public static Scheduler scheduler(Path folder) {
        Path file = folder.resolve("scheduler").resolve("scheduler_config.json");
        if (!Files.isRegularFile(file)) {
            throw new ModelFormatException(folder + ": no scheduler/scheduler_config.json (HiDream's Full uses UniPC, Fast and Dev FlowMatchLCM)");
        }
        com.fasterxml.jackson.databind.JsonNode c = JsonConfigs.readObject(file, "scheduler config");
        String cls = c.path("_class_name").asText("");
        double shift = c.hasNonNull("shift") ? c.get("shift").asDouble() : c.path("flow_shift").asDouble(1.0);
        switch (cls) {
            case FlowMatchSchedulerConfig.LCM_CLASS_NAME:
                return new Lcm(FlowMatchSchedulerConfig.fromJson(c, file.toString()));
            case UniPcMultistepScheduler.CLASS_NAME:
                return new UniPc(UniPcMultistepScheduler.fromJson(c, file.toString()));
            case "FlowUniPCMultistepScheduler":
                return new UniPc(UniPcMultistepScheduler.Config.hidreamFull().withShift(shift));
            case "FlashFlowMatchEulerDiscreteScheduler", FlowMatchSchedulerConfig.CLASS_NAME:
                return new Lcm(FlowMatchSchedulerConfig.sd3().withShift(shift));
            default:
                throw new ModelFormatException(file + ": _class_name '" + cls + "' is not a HiDream scheduler (expected FlowMatchLCMScheduler or "
                        + "UniPCMultistepScheduler)");
        }
    }

    /**
     * One request's text conditioning in transformer-batch order ({@code [negative; positive]} with CFG): T5 {@code [R, Lt, C]},
     * Llama {@code [N, R, Ll, C]}, pooled {@code [R, P]}; {@code positive} is the prompts' own (also without CFG).
     */
    public record Conditioning(HiDreamTextEncoders.Embeddings positive, HiDreamTextEncoders.Embeddings negative, Tensor t5, Tensor llama,
                               Tensor pooled) implements AutoCloseable {
        @Override
        public void close() {
            positive.close();
            if (negative != null) negative.close();
            Native.release(t5);
            Native.release(llama);
            Native.release(pooled);
        }
    }

    private final HiDreamTextEncoders text;
    private final Offloadable<HiDreamTransformer> transformer;
    private final HiDreamPooledEmbedder pooledEmbedder;
    private final HiDreamConfig config;
    private final AutoencoderKL vae;
    private final Scheduler scheduler;
    private final DType dtype;
    private final DeviceSpec device;

    HiDreamPipeline(HiDreamTextEncoders text, Offloadable<HiDreamTransformer> transformer, HiDreamPooledEmbedder pooledEmbedder, HiDreamConfig config,
                    AutoencoderKL vae, Scheduler scheduler, DType dtype, DeviceSpec device) {
        checkWidths("HiDream pipeline", text, config, vae);
        this.text = text;
        this.transformer = transformer;
        this.pooledEmbedder = pooledEmbedder;
        this.config = config;
        this.vae = vae;
        this.scheduler = scheduler;
        this.dtype = dtype;
        this.device = device;
    }

    /**
     * Loads a diffusers HiDream folder with the Llama text encoder and tokenizer at {@code llama} / {@code llamaTokenizer}.
     * With {@code offloadText} nothing big loads now: the text encoders load one at a time when prompts are encoded, the
     * transformer when denoising starts.
     */
    public static HiDreamPipeline load(Path folder, Path llama, Path llamaTokenizer, DType dtype, DeviceSpec device, boolean offloadText) {
        DiffusersFolders.checkModelIndex(folder, HiDreamFamily.CLASS_NAME, "a diffusers HiDream folder");
        DiffusersFolders.requireParts(folder, "a diffusers HiDream folder", "transformer", "vae");
        Scheduler scheduler = scheduler(folder);
        HiDreamConfig config = HiDreamTransformer.inspect(folder.resolve("transformer"));
        return Modules.loading(loaded -> {
            HiDreamTextEncoders text = Modules.track(loaded, HiDreamTextEncoders.load(HiDreamTextEncoders.Sources.of(folder, llama, llamaTokenizer),
                    dtype, offloadText, device));
            checkWidths(folder.toString(), text, config, null);
            HiDreamPooledEmbedder pooled = Modules.track(loaded, HiDreamPooledEmbedder.load(folder.resolve("transformer"), config, dtype, device));
            Offloadable<HiDreamTransformer> transformer = Modules.track(loaded,
                    Offloadable.of("HiDream transformer", () -> HiDreamTransformer.load(folder.resolve("transformer"), dtype, device), offloadText));
            AutoencoderKL vae = Modules.track(loaded, AutoencoderKL.load(folder.resolve("vae"), dtype, device));
            return new HiDreamPipeline(text, transformer, pooled, config, vae, scheduler, dtype, device);
        });
    }

    private static void checkWidths(String origin, HiDreamTextEncoders text, HiDreamConfig c, AutoencoderKL vae) {
        if (text.pooledDim() != c.textEmbDim() || text.t5Dim() != c.t5Channels() || text.llamaDim() != c.llamaChannels()) {
            throw new ModelFormatException(origin + ": the text encoders give pooled width " + text.pooledDim() + ", T5 width " + text.t5Dim()
                    + " and Llama width " + text.llamaDim() + ", but the transformer expects text_emb_dim " + c.textEmbDim()
                    + " and caption_channels [" + c.t5Channels() + ", " + c.llamaChannels() + "]");
        }
        if (text.llamaStates() < c.llamaStatesNeeded()) {
            throw new ModelFormatException(origin + ": the Llama text encoder has " + text.llamaStates() + " layers (hidden states), but the "
                    + "transformer's llama_layers reads state " + (c.llamaStatesNeeded() - 1) + " (HiDream-I1 needs Llama-3.1-8B's 32)");
        }
        if (vae != null && vae.config().latentChannels() != c.inChannels()) {
            throw new ModelFormatException(origin + ": the VAE has " + vae.config().latentChannels() + " latent channels, the transformer "
                    + c.inChannels() + " input channels");
        }
    }

    public HiDreamConfig config() { return config; }
    public AutoencoderKL vae() { return vae; }
    public HiDreamTextEncoders textEncoders() { return text; }
    public Scheduler scheduler() { return scheduler; }

    /** The transformer, loaded if it is not (with text offloading the text encoders are released first). */
    public HiDreamTransformer transformer() {
        if (!transformer.isResident() && !transformer.isLoaded()) text.release();
        return transformer.acquire();
    }

    /** The transformer's holder (whether it is loaded, how often it was). */
    public Offloadable<HiDreamTransformer> transformerPart() { return transformer; }

    @Override public int numGuidedBlocks() { return config.totalBlocks(); }
    @Override public DType dtype() { return dtype; }
    @Override public DeviceSpec device() { return device; }

    @Override
    public Set<Class<? extends GenerationOption>> supportedOptions() {
        return OPTIONS;
    }

    @Override
    public boolean guideFinalNorm() {
        return true;
    }

    /** The image size a request gets: the area-preserving resize of its size ({@link SampleSize}, else none). */
    public static int[] imageSize(GenerationSettings s) {
        SampleSize size = s.option(SampleSize.class);
        return size == null ? new int[] {s.width(), s.height()} : size.resize(s.width(), s.height());
    }

    /** The latent shape of a request: {@code [B, C, 2·⌊H'/16⌋, 2·⌊W'/16⌋]} of its resized size. */
    public long[] latentShape(GenerationSettings s) {
        int[] wh = imageSize(s);
        return new long[] {s.images(), config.inChannels(), 2L * (wh[1] / 16), 2L * (wh[0] / 16)};
    }

    @Override
    public void validate(GenerationSettings s) {
        int[] wh = imageSize(s);
        if (wh[0] < 16 || wh[1] < 16) {
            throw new InvalidRequestException("the area-preserving resize turns " + s.width() + "x" + s.height() + " into " + wh[0] + "x" + wh[1]
                    + ": the aspect ratio is too extreme for a sample size of " + s.option(SampleSize.class).pixels());
        }
        long[] shape = latentShape(s);
        int p = config.patchSize();
        long tokens = (shape[2] / p) * (shape[3] / p);
        if (shape[2] != shape[3] && tokens > config.maxSeq()) {
            throw new InvalidRequestException(wh[0] + "x" + wh[1] + " gives " + tokens + " image tokens, more than the " + config.maxSeq()
                    + " non-square images are padded to (max_resolution " + config.maxResolution() + "); use a smaller --sample-size or size");
        }
        StepNoise n = s.option(StepNoise.class);
        if (n != null) {
            long[] expected = new long[shape.length + 1];
            expected[0] = s.steps();
            System.arraycopy(shape, 0, expected, 1, shape.length);
            if (!Arrays.equals(n.shape(), expected)) {
                throw new InvalidRequestException("step noise has shape " + Arrays.toString(n.shape()) + ", expected " + Arrays.toString(expected));
            }
            if (!(scheduler instanceof Lcm)) throw new InvalidRequestException("step noise: this model's scheduler (" + scheduler.name() + ") draws no noise");
        }
    }

    // ---------------------------------------------------------------- steps

    @Override
    public Schedule schedule(GenerationSettings s) {
        SchedulerShift shift = s.option(SchedulerShift.class);
        return scheduler.schedule(s.steps(), shift == null ? null : shift.shift());
    }

    /** LCM: fresh noise every step from each image's seeded generator, after its initial latents (or the given step noise); UniPC: none. */
    @Override
    public Sampler sampler(GenerationSettings s, Schedule schedule) {
        if (scheduler instanceof UniPc u) return new UniPcMultistepScheduler(u.config()).sampler(schedule);
        StepNoise given = s.option(StepNoise.class);
        if (given != null) {
            if (device().isCpu()) return FlowMatchLcmScheduler.sampler(schedule, given::step);
            StepTable.Source noise = StepTable.predrawn(schedule.steps(), given::step, device()); // moved once, not per step
            return FlowMatchLcmScheduler.sampler(schedule, noise, noise);
        }
        long[] shape = latentShape(s);
        Noise.Stream stream = Noise.Stream.perRow(shape, s.seeds());
        // the initial latents were this generator's first draw (in the latents' dtype); from an init image, its posterior
        // sample came first and the noise second (ImageToImage.start)
        if (s.option(InitImage.class) != null) stream.next(dtype).close();
        stream.next(dtype).close();
        if (device().isCpu()) return FlowMatchLcmScheduler.sampler(schedule, i -> stream.next(DType.F32), stream);
        // off the CPU: every step's noise drawn now from the same generators, in step order, and moved to the device once
        try (stream) {
            StepTable.Source noise = StepTable.predrawn(schedule.steps(), i -> stream.next(DType.F32), device());
            return FlowMatchLcmScheduler.sampler(schedule, noise, noise);
        }
    }

    /** Prompt (and, with CFG, negative prompt) embeddings in transformer-batch order; releases the transformer first when offloading. */
    @Override
    public Conditioning encode(GenerationSettings s) {
        return encode(s, null, null);
    }

    /** {@link #encode(GenerationSettings)} with the Llama token ids and masks given ({@code {ids, mask}}, null: the tokenizer's). */
    public Conditioning encode(GenerationSettings s, Tensor[] llamaIds, Tensor[] negativeLlamaIds) {
        transformer.release();
        HiDreamTextEncoders.Embeddings pos = text.encode(s.prompts(), s.imagesPerPrompt(), s.maxSequenceLength(), llamaIds);
        if (!cfg(s)) {
            try (PointerScope scope = new PointerScope()) {
                return new Conditioning(pos, null, Tensors.keep(pos.t5().clone()), Tensors.keep(pos.llama().clone()), Tensors.keep(pos.pooled().clone()));
            } catch (RuntimeException e) {
                pos.close();
                throw e;
            }
        }
        HiDreamTextEncoders.Embeddings neg = null;
        try (PointerScope scope = new PointerScope()) {
            List<String> negatives = s.option(ClassifierFreeGuidance.class).negatives(s.prompts().size());
            neg = text.encode(negatives, s.imagesPerPrompt(), s.maxSequenceLength(), negativeLlamaIds);
            return new Conditioning(pos, neg, Tensors.keep(cat(new TensorVector(neg.t5(), pos.t5()), 0)),
                    Tensors.keep(cat(new TensorVector(neg.llama(), pos.llama()), 1)), Tensors.keep(cat(new TensorVector(neg.pooled(), pos.pooled()), 0)));
        } catch (RuntimeException e) {
            pos.close();
            if (neg != null) neg.close();
            throw e;
        }
    }

    /** {@code p_embedder(pooled(pos)) − p_embedder(pooled(neg))}, [1, D], owned by the caller (the transformer need not be loaded). */
    @Override
    public Tensor delta(String pos, String neg) {
        return GuidancePlan.direction(text::pooled, pooledEmbedder::direction, pos, neg);
    }

    /** Initial latents in the model dtype: the request's, else {@code randn} per image with its own CPU generator. Caller-owned. */
    @Override
    public Tensor noise(GenerationSettings s) {
        long[] shape = latentShape(s);
        return s.initialLatents(shape, dtype);
    }

    /** The forward on {@code [x; x]} with CFG, else on {@code x}; the velocity is the negated output ({@code v_u + s·(v_c − v_u)} with CFG). */
    @Override
    public Velocity velocity(GenerationSettings s, Schedule schedule, Conditioning cond, ModulationGuidance guidance, ConditioningObserver observer) {
        boolean cfg = cfg(s);
        int batch = s.images();
        long rows = cfg ? 2L * batch : batch;
        if (cond.pooled().size(0) != rows) {
            throw new IllegalArgumentException("conditioning has " + cond.pooled().size(0) + " rows, expected " + rows + " for this request");
        }
        HiDreamTransformer model = transformer();
        long[] shape = latentShape(s);
        HiDreamTransformer.Text projected = model.text(cond.t5(), cond.llama());
        HiDreamTransformer.Layout layout = null;
        // the pooled vectors and every step's timestep go to the device once, here (the text states above, projected there)
        Tensor pooled = null;
        StepTable timesteps;
        try {
            layout = model.layout((int) shape[2], (int) shape[3], projected.textLength(), projected.llamaLength());
            pooled = Transfers.toOwned(cond.pooled(), device());
            timesteps = StepTable.timesteps(schedule, rows, device());
        } catch (RuntimeException e) {
            if (layout != null) layout.close();
            Native.release(pooled);
            projected.close();
            throw e;
        }
        HiDreamTransformer.Layout lay = layout;
        Tensor pool = pooled;
        StepTable ts = timesteps;
        Scalar scale = cfg ? new Scalar(s.option(ClassifierFreeGuidance.class).scale()) : null;
        return new Velocity() {
            @Override
            public Tensor at(Tensor x, int i) {
                try (PointerScope scope = new PointerScope()) {
                    Tensor in = cfg ? cat(new TensorVector(x, x), 0) : x;
                    Tensor t = ts.at(i);                                                                             // [rows] fp32
                    Tensor out = model.forward(in, t, projected, pool, lay, guidance, i, observer);                 // owned
                    Tensor v = out.neg();                                                                            // v = −sample
                    out.close();
                    if (!cfg) return Tensors.keep(v);
                    return Tensors.keep(NegativePrompts.combine(v, scale));                                      // v_u + s·(v_c − v_u)
                }
            }

            @Override
            public void close() {
                lay.close();
                projected.close();
                ts.close();
                Native.release(pool);
                if (scale != null) scale.close();
            }
        };
    }

    /**
     * The FLUX VAE's latents as the sampler steps them, unpacked, with the init images and masks read at the resized size
     * ({@link #imageSize}): image-to-image and inpainting as FLUX's and SD3's ({@link io.mmdit4j.pipeline.ImageToImage};
     * diffusers has no HiDream img2img pipeline, so the rules are those of its FLUX one).
     */
    @Override
    public LatentSpace latentSpace() {
        return LatentSpace.of(vae, dtype, this::latentShape, x -> x, HiDreamPipeline::imageSize);
    }

    /** ComfyUI's latent-to-RGB preview: HiDream-I1 decodes with the FLUX VAE (its latent format is {@code Flux}). */
    @Override
    public Tensor preview(Tensor latents, GenerationSettings s) {
        return latents.size(1) == 16 ? LatentPreview.FLUX.rgb(latents) : null;
    }

    /** Latents → images [B, 3, H, W] in [0, 1], fp32 on the CPU ({@code decode(z/scaling + shift)}). Caller-owned. */
    @Override
    public Tensor decode(Tensor latents, GenerationSettings s) {
        return vae.decodeToImages(latents);
    }

    @Override
    public void modulations(BlockConditioning cond, ModulationVisitor visitor) {
        transformer().modulations(cond, visitor);
    }

    @Override
    public void close() {
        Modules.closeAll(text, transformer, pooledEmbedder, vae);
    }
}
