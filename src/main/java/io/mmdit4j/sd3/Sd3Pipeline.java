package io.mmdit4j.sd3;

import io.mmdit4j.guidance.GuidanceTerm;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.guidance.StepWindow;
import io.mmdit4j.io.JsonConfigs;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.nn.Modules;
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
import io.mmdit4j.vae.AutoencoderKL;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CancellationException;

import static org.bytedeco.pytorch.global.torch.cat;
import static org.bytedeco.pytorch.global.torch.full;

/**
 * SD3 / SD3.5 text-to-image as diffusers' {@code StableDiffusion3Pipeline.__call__} (MODEL-SPEC D.4): prompts (and
 * negative prompts) → CLIP-L + CLIP-G + T5 → seeded noise {@code [B, 16, H/8, W/8]} → flow-matching Euler loop with
 * classifier-free guidance on the batch {@code [negative; positive]} and per-step, per-row modulation guidance →
 * VAE → images in [0, 1]. Custom sigma lists (DMD2-style recipes) reach the model unshifted unless asked otherwise.
 * The steps are also public ({@link #encode}, {@link #noise}, {@link #guidance}, {@link #denoise}, {@link #decode}).
 */
public final class Sd3Pipeline implements AutoCloseable {
    public static final String CLASS_NAME = "StableDiffusion3Pipeline";

    private final Sd3TextEncoders text;
    private final Sd3Transformer transformer;
    private final AutoencoderKL vae;
    private final FlowMatchSchedulerConfig schedulerConfig;
    private final DType dtype;

    /**
     * Which transformer rows of a CFG batch {@code [negative; positive]} a guidance direction steers (METHOD.md §5).
     * Without CFG there is only the conditional half, which every choice guides with {@code +w}.
     */
    public enum CfgRows {
        /** {@code +w·delta} on both halves: the SD3.5 reference. */
        BOTH(1, 1),
        /** {@code +w·delta} on the conditional half only (COSMOS-style). */
        COND(0, 1),
        /** {@code +w·delta} on the conditional half, {@code −w·delta} on the unconditional half (HiDream-style). */
        COND_NEG(-1, 1);

        public final double uncond;
        public final double cond;

        CfgRows(double uncond, double cond) {
            this.uncond = uncond;
            this.cond = cond;
        }

        /** {@code both}, {@code cond} or {@code cond-neg}. */
        public static CfgRows parse(String s) {
            switch (s.trim().toLowerCase(Locale.ROOT).replace('_', '-')) {
                case "both": return BOTH;
                case "cond": return COND;
                case "cond-neg": return COND_NEG;
                default: throw new IllegalArgumentException("guidance rows '" + s + "': expected both, cond or cond-neg");
            }
        }

        @Override
        public String toString() {
            return name().toLowerCase(Locale.ROOT).replace('_', '-');
        }
    }

    /**
     * A modulation-guidance direction given as prompts (p+, p−) with its weight, layers, steps, per-image weights
     * ({@code rowWeights}, one per image, null = all 1) and the CFG halves it applies to.
     */
    public record Direction(String label, String pos, String neg, double w, LayerSchedule layers, StepWindow steps, double[] rowWeights,
                            CfgRows rows) {
        public Direction {
            if (pos == null || neg == null) throw new IllegalArgumentException("guidance direction '" + label + "' needs both prompts");
            if (layers == null) layers = LayerSchedule.all();
            if (steps == null) steps = StepWindow.all();
            if (rows == null) rows = CfgRows.BOTH;
            if (rowWeights != null) rowWeights = rowWeights.clone();
        }
    }

    /**
     * One generation.
     *
     * @param negativePrompts   null (diffusers' default {@code ""}), one for all prompts, or one per prompt; used only with CFG
     * @param guidanceScale     CFG scale; CFG is on when it is > 1 (diffusers' {@code do_classifier_free_guidance})
     * @param seeds             one per image (B·n), or one seed for image 0 and seed+i for image i
     * @param sigmas            explicit sigmas (with or without the terminal 0), or null for the scheduler's default spacing
     * @param shiftSigmas       apply the scheduler's static shift to {@code sigmas} as diffusers' {@code set_timesteps(sigmas=)}
     *                          does; false (the recipes' meaning) uses them as given
     * @param shift             a static shift instead of the scheduler config's (diffusers {@code from_config(..., shift=)}), or null
     * @param latents           optional initial noise [B·n, 16, H/8, W/8] instead of seeds
     */
    public record Request(List<String> prompts, List<String> negativePrompts, int imagesPerPrompt, int width, int height, int steps,
                          double guidanceScale, long[] seeds, int maxSequenceLength, double[] sigmas, boolean shiftSigmas, Double shift,
                          List<Direction> guidance, Tensor latents) {
        public Request {
            if (prompts == null || prompts.isEmpty()) throw new IllegalArgumentException("at least one prompt is required");
            if (imagesPerPrompt < 1) throw new IllegalArgumentException("images per prompt must be >= 1");
            if (width < 16 || height < 16 || width % 16 != 0 || height % 16 != 0) {
                throw new IllegalArgumentException("width and height must be positive multiples of 16, got " + width + "x" + height);
            }
            if (!Double.isFinite(guidanceScale)) throw new IllegalArgumentException("guidance scale must be finite, got " + guidanceScale);
            if (sigmas != null) {
                sigmas = sigmas.clone();
                int n = sigmas.length > 0 && sigmas[sigmas.length - 1] == 0.0 ? sigmas.length - 1 : sigmas.length;
                if (steps != n) throw new IllegalArgumentException(sigmas.length + " sigmas describe " + n + " steps, but steps is " + steps);
            }
            if (steps < 1) throw new IllegalArgumentException("steps must be >= 1, got " + steps);
            if (shift != null && !(shift > 0 && Double.isFinite(shift))) throw new IllegalArgumentException("shift must be > 0, got " + shift);
            prompts = List.copyOf(prompts);
            if (negativePrompts != null) {
                if (negativePrompts.size() != 1 && negativePrompts.size() != prompts.size()) {
                    throw new IllegalArgumentException(negativePrompts.size() + " negative prompts for " + prompts.size()
                            + " prompts: give one, or one per prompt");
                }
                negativePrompts = List.copyOf(negativePrompts);
            }
            guidance = guidance == null ? List.of() : List.copyOf(guidance);
        }

        /** Text-to-image with the scheduler's own sigmas. */
        public Request(List<String> prompts, String negativePrompt, int imagesPerPrompt, int width, int height, int steps, double guidanceScale,
                       long[] seeds, int maxSequenceLength, List<Direction> guidance) {
            this(prompts, negativePrompt == null ? null : List.of(negativePrompt), imagesPerPrompt, width, height, steps, guidanceScale, seeds,
                    maxSequenceLength, null, false, null, guidance, null);
        }

        public int batch() {
            return prompts.size() * imagesPerPrompt;
        }

        /** diffusers' {@code do_classifier_free_guidance}: {@code guidance_scale > 1}. */
        public boolean cfg() {
            return guidanceScale > 1;
        }

        /** The negative prompt of each prompt ({@code ""} when none was given). */
        public List<String> negatives() {
            if (negativePrompts == null) return Collections.nCopies(prompts.size(), "");
            return negativePrompts.size() == 1 ? Collections.nCopies(prompts.size(), negativePrompts.get(0)) : negativePrompts;
        }

        public long[] seedsPerImage() {
            long[] s = new long[batch()];
            if (seeds != null && seeds.length > 1 && seeds.length != s.length) {
                throw new IllegalArgumentException(seeds.length + " seeds for " + s.length + " images: give one seed, or one per image");
            }
            for (int i = 0; i < s.length; i++) s[i] = seeds == null || seeds.length == 0 ? i : seeds.length == s.length ? seeds[i] : seeds[0] + i;
            return s;
        }
    }



    /** Images [B·n, 3, H, W] in [0, 1] (fp32, CPU) and the final latents [B·n, 16, H/8, W/8]; owned by this result. */
    public record Result(Tensor images, Tensor finalLatents, Timings timings) implements AutoCloseable {
        @Override
        public void close() {
            Native.release(images);
            Native.release(finalLatents);
        }
    }

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
        checkWidths("SD3 pipeline", text, transformer);
        this.text = text;
        this.transformer = transformer;
        this.vae = vae;
        this.schedulerConfig = schedulerConfig;
        this.dtype = text.dtype();
    }

    /** A diffusers SD3 / SD3.5 folder ({@code model_index.json}; {@code text_encoder_3/} may be absent). */
    public static Sd3Pipeline load(Path folder, DType dtype, DeviceSpec device) {
        Path index = folder.resolve("model_index.json");
        if (!Files.isRegularFile(index)) throw new ModelFormatException(folder + ": no model_index.json (expected a diffusers SD3 folder)");
        JsonConfigs.checkClass(JsonConfigs.readObject(index), index, CLASS_NAME);
        List<AutoCloseable> loaded = new ArrayList<>();
        try {
            Sd3Transformer transformer = Modules.track(loaded, Sd3Transformer.load(folder.resolve("transformer"), dtype, device));
            Sd3TextEncoders text = Modules.track(loaded, Sd3TextEncoders.load(folder, dtype, transformer.config().jointAttentionDim()));
            checkWidths(folder.toString(), text, transformer);
            AutoencoderKL vae = Modules.track(loaded, AutoencoderKL.load(folder.resolve("vae"), dtype, device));
            FlowMatchSchedulerConfig sched = Files.isDirectory(folder.resolve("scheduler"))
                    ? FlowMatchSchedulerConfig.fromFile(folder.resolve("scheduler")) : FlowMatchSchedulerConfig.sd3();
            return new Sd3Pipeline(text, transformer, vae, sched);
        } catch (RuntimeException e) {
            loaded.forEach(Modules::closeQuietly);
            throw e;
        }
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
    public Sd3TextEncoders textEncoders() { return text; }
    public FlowMatchSchedulerConfig schedulerConfig() { return schedulerConfig; }

    // ---------------------------------------------------------------- steps

    /** The sigmas and timesteps of a request: its own list (shifted or not), else SD3's default spacing. */
    public Schedule schedule(Request r) {
        FlowMatchSchedulerConfig c = r.shift() == null ? schedulerConfig : schedulerConfig.withShift(r.shift());
        FlowMatchEulerScheduler s = FlowMatchEulerScheduler.sd3(c);
        if (r.sigmas() == null) return s.schedule(r.steps(), null);
        if (!r.shiftSigmas()) return s.fromSigmas(r.sigmas());
        double[] given = r.sigmas();
        int n = given[given.length - 1] == 0.0 ? given.length - 1 : given.length;
        return s.setTimesteps(null, Arrays.copyOf(given, n), null); // set_timesteps appends the terminal 0 itself
    }

    /** Prompt (and, with CFG, negative prompt) embeddings, stacked as the transformer batch. Caller-owned. */
    public Conditioning encode(Request r) {
        Sd3TextEncoders.Embeddings pos = text.encode(r.prompts(), r.imagesPerPrompt(), r.maxSequenceLength());
        if (!r.cfg()) {
            try (PointerScope scope = new PointerScope()) {
                return new Conditioning(pos, null, Tensors.keep(pos.promptEmbeds().clone()), Tensors.keep(pos.pooled().clone()));
            } catch (RuntimeException e) {
                pos.close();
                throw e;
            }
        }
        Sd3TextEncoders.Embeddings neg = null;
        try (PointerScope scope = new PointerScope()) {
            neg = text.encode(r.negatives(), r.imagesPerPrompt(), r.maxSequenceLength());
            Tensor context = cat(new TensorVector(neg.promptEmbeds(), pos.promptEmbeds()), 0); // [2B, S, joint]: [negative; positive]
            Tensor pooled = cat(new TensorVector(neg.pooled(), pos.pooled()), 0);               // [2B, P]
            return new Conditioning(pos, neg, Tensors.keep(context), Tensors.keep(pooled));
        } catch (RuntimeException e) {
            pos.close();
            if (neg != null) neg.close();
            throw e;
        }
    }

    /** Initial latents [B·n, 16, H/8, W/8] in the model dtype: the request's latents, else seeded noise per image. Caller-owned. */
    public Tensor noise(Request r) {
        long[] shape = Noise.sd3LatentShape(r.batch(), r.height(), r.width());
        shape[1] = transformer.config().inChannels();
        if (r.latents() != null) {
            if (!Arrays.equals(Tensors.shape(r.latents()), shape)) {
                throw new IllegalArgumentException("latents have shape " + Arrays.toString(Tensors.shape(r.latents())) + ", expected "
                        + Arrays.toString(shape));
            }
            try (PointerScope scope = new PointerScope()) {
                return Tensors.keep(r.latents().to(dtype.scalarType()).clone());
            }
        }
        return Noise.randnPerRow(shape, r.seedsPerImage(), dtype);
    }

    /**
     * The request's guidance directions as a plan over the transformer batch (2B rows with CFG: {@code [negative;
     * positive]}, each direction's {@link CfgRows} choosing the sign per half). Deltas are computed once per request.
     */
    public ModulationGuidance guidance(Request r) {
        ModulationGuidance.Builder b = ModulationGuidance.builder();
        List<Tensor> made = new ArrayList<>();
        try {
            for (Direction d : r.guidance()) {
                if (d.rowWeights() != null && d.rowWeights().length != r.batch()) {
                    throw new IllegalArgumentException("guidance '" + d.label() + "': " + d.rowWeights().length + " row weights for "
                            + r.batch() + " images");
                }
                d.layers().factors(transformer.numGuidedBlocks()); // reject out-of-range layers before any work
                Tensor delta = direction(d.pos(), d.neg());
                made.add(delta);
                b.add(new GuidanceTerm(d.label(), delta, d.w(), d.layers(), d.steps(), transformerRowWeights(r, d)));
            }
        } catch (RuntimeException e) {
            made.forEach(Native::release);
            throw e;
        }
        return b.build();
    }

    /** {@code TextMLP(pooled(pos)) − TextMLP(pooled(neg))}, [1, D], owned by the caller. */
    public Tensor direction(String pos, String neg) {
        try (PointerScope scope = new PointerScope()) {
            Tensor p = text.pooled(List.of(pos));
            Tensor n = text.pooled(List.of(neg));
            Tensor delta = transformer.guidanceDelta(p, n);
            p.close();
            n.close();
            return delta;
        }
    }

    /** Per transformer row: the image's weight times the CFG half's sign; null when every row weighs 1. */
    static double[] transformerRowWeights(Request r, Direction d) {
        int b = r.batch();
        double[] perImage = d.rowWeights() != null ? d.rowWeights() : filled(b, 1.0);
        if (!r.cfg()) return d.rowWeights() == null ? null : perImage;
        if (d.rows() == CfgRows.BOTH && d.rowWeights() == null) return null;
        double[] w = new double[2 * b];
        for (int i = 0; i < b; i++) {
            w[i] = d.rows().uncond * perImage[i];
            w[b + i] = d.rows().cond * perImage[i];
        }
        return w;
    }

    private static double[] filled(int n, double v) {
        double[] a = new double[n];
        Arrays.fill(a, v);
        return a;
    }

    /** The denoising loop from initial latents; returns the final latents (caller-owned) and fills stepNanos. */
    public Tensor denoise(Request r, Conditioning cond, Tensor latents, ModulationGuidance guidance, Progress progress, long[] stepNanos) {
        Schedule schedule = schedule(r);
        boolean cfg = r.cfg();
        long rows = cfg ? 2L * r.batch() : r.batch();
        if (cond.context().size(0) != rows || latents.size(0) != r.batch()) {
            throw new IllegalArgumentException("conditioning has " + cond.context().size(0) + " rows and latents " + latents.size(0)
                    + ", expected " + rows + " and " + r.batch() + " for this request");
        }
        Scalar scale = new Scalar(r.guidanceScale());
        Tensor x = latents;
        if (!transformer.device().isCpu()) { // the Euler step runs where the velocity is
            try (PointerScope scope = new PointerScope()) {
                x = Tensors.keep(latents.to(transformer.device().torchDevice(), latents.scalar_type()));
            }
        }
        try {
            for (int i = 0; i < schedule.steps(); i++) {
                long t0 = System.nanoTime();
                try (PointerScope step = new PointerScope()) {
                    Tensor in = cfg ? cat(new TensorVector(x, x), 0) : x;                                   // [rows, C, h, w]
                    Tensor t = full(new long[] {rows}, new Scalar((double) schedule.timestep(i)), new TensorOptions(ScalarType.Float));
                    Tensor out = transformer.forward(in, cond.context(), cond.pooled(), t, guidance, i);   // owned
                    Tensor v = out;
                    if (cfg) {
                        Tensor uncond = out.narrow(0, 0, r.batch()), text = out.narrow(0, r.batch(), r.batch());
                        v = uncond.add(text.sub(uncond).mul(scale));                                      // v_u + s·(v_c − v_u)
                    }
                    Tensor next = schedule.step(v, i, x);
                    out.close();
                    if (x != latents) x.close();
                    x = next;
                }
                long elapsed = System.nanoTime() - t0;
                if (stepNanos != null) stepNanos[i] = elapsed;
                if (!progress.onStep(i, schedule.steps(), schedule.sigma(i + 1), elapsed)) {
                    if (x != latents) x.close();
                    throw new CancellationException("generation cancelled after step " + (i + 1) + " of " + schedule.steps());
                }
            }
            if (x != latents) return x;
            try (PointerScope scope = new PointerScope()) {
                return Tensors.keep(x.clone());
            }
        } finally {
            scale.close();
        }
    }

    /** Latents [B, 16, h, w] → images [B, 3, H, W] in [0, 1], fp32 on the CPU ({@code decode(z/scaling + shift)}). Caller-owned. */
    public Tensor decode(Tensor latents) {
        try (PointerScope scope = new PointerScope()) {
            Tensor decoded = vae.decodeScaled(latents);
            Tensor image = vae.toImage(decoded);
            Tensor cpu = image.to(new Device("cpu"), ScalarType.Float);
            decoded.close();
            image.close();
            return Tensors.keep(cpu);
        }
    }

    // ---------------------------------------------------------------- all together

    public Result generate(Request r) {
        return generate(r, Progress.NONE);
    }

    public Result generate(Request r, Progress progress) {
        schedule(r); // reject a bad sigma list before any work
        long t0 = System.nanoTime();
        try (Conditioning cond = encode(r); ModulationGuidance g = guidance(r)) {
            TimedGeneration.Output o = TimedGeneration.denoiseAndDecode(System.nanoTime() - t0, r.steps(), stepNanos -> {
                try (Tensor noise = noise(r)) {
                    return denoise(r, cond, noise, g, progress, stepNanos);
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
