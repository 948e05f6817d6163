package io.mmdit4j.sd3;

import io.mmdit4j.sampling.StepTable;
import io.mmdit4j.runtime.Transfers;
import io.mmdit4j.guidance.ConditioningObserver;
import io.mmdit4j.guidance.GuidancePlan;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.io.DiffusersFolders;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.lora.LoraAdapter;
import io.mmdit4j.lora.LoraReport;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.pipeline.ClassifierFreeGuidance;
import io.mmdit4j.pipeline.CustomSigmas;
import io.mmdit4j.pipeline.FamilyPipeline;
import io.mmdit4j.pipeline.GenerationOption;
import io.mmdit4j.pipeline.GenerationSettings;
import io.mmdit4j.pipeline.LatentPreview;
import io.mmdit4j.pipeline.LatentSpace;
import io.mmdit4j.pipeline.NegativePrompts;
import io.mmdit4j.pipeline.RandomDraws;
import io.mmdit4j.pipeline.ScaleWise;
import io.mmdit4j.pipeline.SchedulerShift;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Offloadable;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.sampling.FlowMatchEulerScheduler;
import io.mmdit4j.sampling.FlowMatchSchedulerConfig;
import io.mmdit4j.sampling.Noise;
import io.mmdit4j.sampling.Sampler;
import io.mmdit4j.sampling.ScaleWiseSampler;
import io.mmdit4j.sampling.Schedule;
import io.mmdit4j.vae.AutoencoderKL;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

import static org.bytedeco.pytorch.global.torch.cat;

/**
 * SD3 / SD3.5 text-to-image as diffusers' {@code StableDiffusion3Pipeline.__call__} (MODEL-SPEC D.4): prompts (and
 * negative prompts) → CLIP-L + CLIP-G + T5 → seeded noise {@code [B, 16, H/8, W/8]} → flow-matching Euler loop with
 * classifier-free guidance on the batch {@code [negative; positive]} and per-step, per-row modulation guidance →
 * VAE → images in [0, 1]. Custom sigma lists (DMD2-style recipes) reach the model unshifted unless asked otherwise.
 * The shared skeleton runs the steps; they are also public for callers that need intermediate results.
 */
public final class Sd3Pipeline implements FamilyPipeline<Sd3Pipeline.Conditioning> {
    /** CLIP-L, CLIP-G, T5: resident, or with {@code --offload text} released after each request's text and loaded again by the next. */
    private final Offloadable<Sd3TextEncoders> text;
    private final Sd3Transformer transformer;
    private final AutoencoderKL vae;
    private final FlowMatchSchedulerConfig schedulerConfig;
    private final DType dtype;

    /**
     * The conditioning of one request: the positive embeddings and, with CFG, the negative ones, already stacked as
     * the transformer batch {@code [negative; positive]} ({@code context}, {@code pooled}).
     */
    public record Conditioning(Sd3TextEncoders.Embeddings positive, Sd3TextEncoders.Embeddings negative, Tensor context, Tensor pooled)
            implements AutoCloseable {
        @Override
        public void close() {
            positive.close();
            if (negative != null) negative.close();
            Native.release(context);
            Native.release(pooled);
        }
    }

    public Sd3Pipeline(Sd3TextEncoders text, Sd3Transformer transformer, AutoencoderKL vae, FlowMatchSchedulerConfig schedulerConfig) {
        this(Offloadable.resident("SD3 text encoders", () -> text), transformer, vae, schedulerConfig);
    }

    private Sd3Pipeline(Offloadable<Sd3TextEncoders> text, Sd3Transformer transformer, AutoencoderKL vae, FlowMatchSchedulerConfig schedulerConfig) {
        checkWidths("SD3 pipeline", text.acquire(), transformer); // offloaded: loaded now, released after the first request's text
        this.text = text;
        this.transformer = transformer;
        this.vae = vae;
        this.schedulerConfig = schedulerConfig;
        this.dtype = text.acquire().dtype();
    }

    /** A diffusers SD3 / SD3.5 folder ({@code model_index.json}; {@code text_encoder_3/} may be absent). */
    public static Sd3Pipeline load(Path folder, DType dtype, DeviceSpec device) {
        return load(folder, dtype, device, false);
    }

    /** As {@link #load(Path, DType, DeviceSpec)}, optionally with the transformer's blocks offloaded ({@link Sd3Transformer#offload}). */
    public static Sd3Pipeline load(Path folder, DType dtype, DeviceSpec device, boolean offloadBlocks) {
        return load(folder, dtype, device, offloadBlocks, false);
    }

    /** As {@link #load(Path, DType, DeviceSpec, boolean)}; {@code offloadText}: the text encoders are released after each request's text. */
    public static Sd3Pipeline load(Path folder, DType dtype, DeviceSpec device, boolean offloadBlocks, boolean offloadText) {
        DiffusersFolders.checkModelIndex(folder, Sd3Family.CLASS_NAME, "a diffusers SD3 folder");
        return Modules.loading(loaded -> {
            Sd3Transformer transformer = Modules.track(loaded, Sd3Transformer.load(folder.resolve("transformer"), dtype, device, offloadBlocks));
            Offloadable<Sd3TextEncoders> text = Modules.track(loaded, Offloadable.of("SD3 text encoders",
                    () -> Sd3TextEncoders.load(folder, dtype, transformer.config().jointAttentionDim(), transformer.device()), offloadText));
            checkWidths(folder.toString(), text.acquire(), transformer);
            AutoencoderKL vae = Modules.track(loaded, AutoencoderKL.load(folder.resolve("vae"), dtype, device));
            FlowMatchSchedulerConfig sched = Files.isDirectory(folder.resolve("scheduler"))
                    ? FlowMatchSchedulerConfig.fromFile(folder.resolve("scheduler")) : FlowMatchSchedulerConfig.sd3();
            return new Sd3Pipeline(text, transformer, vae, sched);
        });
    }

    private static void checkWidths(String origin, Sd3TextEncoders text, Sd3Transformer t) {
        if (text.jointDim() != t.config().jointAttentionDim() || text.pooledDim() != t.config().pooledProjectionDim()) {
            throw new ModelFormatException(origin + ": text encoders give context width " + text.jointDim() + " and pooled width "
                    + text.pooledDim() + ", but the transformer expects joint_attention_dim " + t.config().jointAttentionDim()
                    + " and pooled_projection_dim " + t.config().pooledProjectionDim());
        }
    }

    public Sd3Transformer transformer() { return transformer; }
    public AutoencoderKL vae() { return vae; }
    /** The text encoders (loaded again if they were offloaded). */
    public Sd3TextEncoders textEncoders() { return text.acquire(); }

    /** The text encoders as a part that may be offloaded ({@code --offload text}). */
    public Offloadable<Sd3TextEncoders> textEncodersPart() { return text; }

    @Override
    public void textEncodersDone() { text.release(); }
    public FlowMatchSchedulerConfig schedulerConfig() { return schedulerConfig; }

    @Override public int numGuidedBlocks() { return transformer.numGuidedBlocks(); }
    @Override public DType dtype() { return dtype; }
    @Override public DeviceSpec device() { return transformer.device(); }

    @Override
    public Set<Class<? extends GenerationOption>> supportedOptions() {
        return Sd3Family.OPTIONS;
    }

    // ---------------------------------------------------------------- steps

    /** The sigmas and timesteps of a request: its own list (shifted or not), else SD3's default spacing. */
    @Override
    public Schedule schedule(GenerationSettings s) {
        SchedulerShift shift = s.option(SchedulerShift.class);
        FlowMatchSchedulerConfig c = shift == null ? schedulerConfig : schedulerConfig.withShift(shift.shift());
        FlowMatchEulerScheduler sched = new FlowMatchEulerScheduler(c, Sd3Family.SIGMA_SPACING);
        CustomSigmas sigmas = s.option(CustomSigmas.class);
        if (sigmas == null) return sched.schedule(s.steps(), null);
        if (!sigmas.shifted()) return sched.fromSigmas(sigmas.sigmas());
        return sched.setTimesteps(null, Arrays.copyOf(sigmas.sigmas(), sigmas.steps()), null); // set_timesteps appends the terminal 0 itself
    }

    /** Prompt (and, with CFG, negative prompt) embeddings, stacked as the transformer batch. Caller-owned. */
    @Override
    public Conditioning encode(GenerationSettings s) {
        Sd3TextEncoders.Embeddings pos = text.acquire().encode(s.prompts(), s.imagesPerPrompt(), s.maxSequenceLength());
        if (!cfg(s)) {
            try (PointerScope scope = new PointerScope()) {
                return new Conditioning(pos, null, Tensors.keep(pos.promptEmbeds().clone()), Tensors.keep(pos.pooled().clone()));
            } catch (RuntimeException e) {
                pos.close();
                throw e;
            }
        }
        Sd3TextEncoders.Embeddings neg = null;
        try (PointerScope scope = new PointerScope()) {
            List<String> negatives = s.option(ClassifierFreeGuidance.class).negatives(s.prompts().size());
            neg = text.acquire().encode(negatives, s.imagesPerPrompt(), s.maxSequenceLength());
            Tensor context = cat(new TensorVector(neg.promptEmbeds(), pos.promptEmbeds()), 0); // [2B, S, joint]: [negative; positive]
            Tensor pooled = cat(new TensorVector(neg.pooled(), pos.pooled()), 0);               // [2B, P]
            return new Conditioning(pos, neg, Tensors.keep(context), Tensors.keep(pooled));
        } catch (RuntimeException e) {
            pos.close();
            if (neg != null) neg.close();
            throw e;
        }
    }

    /**
     * Initial latents [B·n, 16, H/8, W/8] in the model dtype (scale-wise sampling: at the first scale): the request's latents,
     * else seeded noise per image. Caller-owned.
     */
    @Override
    public Tensor noise(GenerationSettings s) {
        try (RandomDraws draws = RandomDraws.of(s)) {
            return draws.initial(latentShape(s), dtype);
        }
    }

    /** {@code [B·n, C, ⌊H/8⌋, ⌊W/8⌋]}, or the first scale's square with scale-wise sampling. */
    private long[] latentShape(GenerationSettings s) {
        long[] shape = Noise.sd3LatentShape(s.images(), s.height(), s.width());
        shape[1] = transformer.config().inChannels();
        ScaleWise swd = s.option(ScaleWise.class);
        if (swd != null && !swd.isFixed()) shape[2] = shape[3] = swd.scale(0);
        return shape;
    }

    /** Scale-wise sampling when asked ({@link ScaleWiseSampler}: fresh noise from each image's stream after its initial latents), else Euler. */
    @Override
    public Sampler sampler(GenerationSettings s, Schedule schedule) {
        ScaleWise swd = s.option(ScaleWise.class);
        if (swd == null) return schedule;
        RandomDraws draws = RandomDraws.of(s);
        try {
            draws.skipInitial(latentShape(s), dtype); // the initial latents were the streams' first draw
            return new ScaleWiseSampler(schedule, swd.scales(), swd.halfNoise(), shape -> draws.next(shape, DType.F32), draws);
        } catch (RuntimeException e) {
            draws.close();
            throw e;
        }
    }

    /** The VAE's latents as the sampler steps them, unpacked (image-to-image, inpainting). */
    @Override
    public LatentSpace latentSpace() {
        return LatentSpace.of(vae, dtype, this::latentShape, x -> x);
    }

    /** {@code TextMLP(pooled(pos)) − TextMLP(pooled(neg))}, [1, D], owned by the caller. */
    @Override
    public Tensor delta(String pos, String neg) {
        Sd3TextEncoders t = text.acquire();
        return GuidancePlan.direction(t::pooled, transformer::guidanceDelta, pos, neg);
    }

    /** The forward on {@code [x; x]} with CFG ({@code v_u + s·(v_c − v_u)}), else on {@code x}. */
    @Override
    public Velocity velocity(GenerationSettings s, Schedule schedule, Conditioning cond, ModulationGuidance guidance, ConditioningObserver observer) {
        boolean cfg = cfg(s);
        int batch = s.images();
        long rows = cfg ? 2L * batch : batch;
        if (cond.context().size(0) != rows) {
            throw new IllegalArgumentException("conditioning has " + cond.context().size(0) + " rows, expected " + rows + " for this request");
        }
        // the text states and every step's timestep go to the device once, here: a step copies nothing from the host
        DeviceSpec device = transformer.device();
        Tensor context = null, pooled = null;
        StepTable timesteps;
        try {
            context = Transfers.toOwned(cond.context(), device);
            pooled = Transfers.toOwned(cond.pooled(), device);
            timesteps = StepTable.timesteps(schedule, rows, device);
        } catch (RuntimeException e) {
            Native.release(context);
            Native.release(pooled);
            throw e;
        }
        Tensor ctx = context, pool = pooled;
        StepTable ts = timesteps;
        Scalar scale = cfg ? new Scalar(s.option(ClassifierFreeGuidance.class).scale()) : null;
        return new Velocity() {
            @Override
            public Tensor at(Tensor x, int i) {
                try (PointerScope scope = new PointerScope()) {
                    Tensor in = cfg ? cat(new TensorVector(x, x), 0) : x;                                   // [rows, C, h, w]
                    Tensor t = ts.at(i);                                                                     // [rows] fp32
                    Tensor out = transformer.forward(in, ctx, pool, t, guidance, i, observer);              // owned
                    if (!cfg) return out;
                    Tensor v = NegativePrompts.combine(out, scale);                                         // v_u + s·(v_c − v_u)
                    out.close();
                    return Tensors.keep(v);
                }
            }

            @Override
            public void close() {
                if (scale != null) scale.close();
                ts.close();
                Native.release(ctx);
                Native.release(pool);
            }
        };
    }

    // ---------------------------------------------------------------- row stepping

    /** A one-image request's encoding depends on its prompt, text length and, with CFG, its negative prompt. */
    @Override
    public Object encodingKey(GenerationSettings oneImage) {
        if (oneImage.images() != 1) return null;
        List<String> negatives = cfg(oneImage) ? oneImage.option(ClassifierFreeGuidance.class).negatives(1) : null;
        return Arrays.asList(oneImage.prompts(), oneImage.maxSequenceLength(), negatives);
    }

    /**
     * SD3 takes a timestep per row, so the images of requests at different steps share one forward: each part's rows
     * ({@code [x; x]} with CFG, else {@code x}), its context and pooled vectors, its own timestep, and the parts' guidance
     * plans stacked at their own steps; each part's prediction is then combined with its own CFG scale, as {@link #velocity}
     * does. Parts with and without CFG may share a forward.
     */
    @Override
    public RowForward<Conditioning> rowForward() {
        return new RowForward<>() {
            private final ModulationGuidance.Stacker stacker = new ModulationGuidance.Stacker();

            @Override
            public List<Tensor> at(List<RowPart<Conditioning>> parts) {
                int n = parts.size();
                List<Tensor> ins = new ArrayList<>(n), contexts = new ArrayList<>(n), pooled = new ArrayList<>(n);
                List<Float> ts = new ArrayList<>();
                List<ModulationGuidance> plans = new ArrayList<>(n);
                int[] rows = new int[n], steps = new int[n];
                try (PointerScope scope = new PointerScope()) {
                    for (int k = 0; k < n; k++) {
                        RowPart<Conditioning> p = parts.get(k);
                        GenerationSettings s = p.settings();
                        boolean cfg = cfg(s);
                        rows[k] = cfg ? 2 * s.images() : s.images();
                        if (p.conditioning().context().size(0) != rows[k]) {
                            throw new IllegalArgumentException("conditioning has " + p.conditioning().context().size(0) + " rows, expected " + rows[k]);
                        }
                        ins.add(cfg ? cat(new TensorVector(p.latents(), p.latents()), 0) : p.latents());
                        contexts.add(p.conditioning().context());
                        pooled.add(p.conditioning().pooled());
                        for (int i = 0; i < rows[k]; i++) ts.add(p.schedule().timestep(p.step())); // full([rows], t, float32) per part
                        plans.add(p.guidance());
                        steps[k] = p.step();
                    }
                    float[] t = new float[ts.size()];
                    for (int i = 0; i < t.length; i++) t[i] = ts.get(i);
                    Tensor out = transformer.forward(stackRows(ins), stackRows(contexts), stackRows(pooled), Transfers.to(Tensors.fromFloats(t, t.length), transformer.device()),
                            stacker.stack(plans, rows, steps), 0, null); // owned
                    List<Tensor> predictions = new ArrayList<>(n);
                    long offset = 0;
                    for (int k = 0; k < n; k++) {
                        GenerationSettings s = parts.get(k).settings();
                        Tensor part = out.narrow(0, offset, rows[k]);
                        offset += rows[k];
                        if (!cfg(s)) {
                            predictions.add(Tensors.keep(part));
                            continue;
                        }
                        predictions.add(Tensors.keep(s.option(ClassifierFreeGuidance.class).combine(part))); // v_u + s·(v_c − v_u)
                    }
                    out.close();
                    return predictions;
                }
            }

            @Override
            public void close() {
                stacker.close();
            }
        };
    }

    /** The parts' rows as one batch (the tensor itself for one part); a temporary of the caller's scope. */
    private static Tensor stackRows(List<Tensor> parts) {
        return parts.size() == 1 ? parts.get(0) : cat(new TensorVector(parts.toArray(Tensor[]::new)), 0);
    }

    /** ComfyUI's SD3 latent-to-RGB preview (any scale of scale-wise sampling). */
    @Override
    public Tensor preview(Tensor latents, GenerationSettings s) {
        return latents.size(1) == 16 ? LatentPreview.SD3.rgb(latents) : null;
    }

    /** Latents [B, 16, h, w] → images [B, 3, H, W] in [0, 1], fp32 on the CPU ({@code decode(z/scaling + shift)}). Caller-owned. */
    @Override
    public Tensor decode(Tensor latents, GenerationSettings s) {
        return vae.decodeToImages(latents);
    }

    @Override
    public LoraReport applyLora(LoraAdapter lora, double scale, boolean strict) {
        return lora.applyTo(transformer, scale, strict);
    }

    @Override
    public void close() {
        Modules.closeAll(text, transformer, vae);
    }
}
