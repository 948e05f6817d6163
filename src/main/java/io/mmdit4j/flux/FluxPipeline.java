package io.mmdit4j.flux;

import io.mmdit4j.guidance.ConditioningObserver;
import io.mmdit4j.guidance.GuidanceTerm;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.guidance.NormControl;
import io.mmdit4j.guidance.StepWindow;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.nn.Rope;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.sampling.FlowMatchEulerScheduler;
import io.mmdit4j.sampling.FlowMatchSchedulerConfig;
import io.mmdit4j.sampling.FluxTimesteps;
import io.mmdit4j.sampling.Noise;
import io.mmdit4j.sampling.Progress;
import io.mmdit4j.sampling.Schedule;
import io.mmdit4j.sampling.TimedGeneration;
import io.mmdit4j.sampling.Timings;
import io.mmdit4j.vae.AutoencoderKL;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CancellationException;

/**
 * FLUX.1 text-to-image as diffusers' {@code FluxPipeline.__call__}: prompts → T5 + CLIP → seeded noise → packed
 * latents → flow-matching Euler loop with per-step, per-row modulation guidance → unpack → VAE → images in [0, 1].
 * The steps are also public ({@link #encode}, {@link #noise}, {@link #denoise}, {@link #decode}) for callers that
 * need intermediate results.
 */
public final class FluxPipeline implements AutoCloseable {
    private final FluxTextEncoders text;
    private final FluxTransformer transformer;
    private final AutoencoderKL vae;
    private final FlowMatchEulerScheduler scheduler;
    private final DType dtype;

    /** A modulation-guidance direction given as prompts (p+, p−) with its weight, layers, steps and rows. */
    public record Direction(String label, String pos, String neg, double w, LayerSchedule layers, StepWindow steps, double[] rowWeights) {
        public Direction {
            if (pos == null || neg == null) throw new IllegalArgumentException("guidance direction '" + label + "' needs both prompts");
            if (layers == null) layers = LayerSchedule.all();
            if (steps == null) steps = StepWindow.all();
        }
    }

    /**
     * One generation. {@code seeds}: one per image (B·n), or one seed for image 0 and seed+i for image i.
     * {@code guidanceScale}: embedded guidance (dev models; ignored for schnell). {@code latents}: optional
     * initial noise [B·n, 16, h, w] (unpacked) instead of seeds.
     */
    public record Request(List<String> prompts, int imagesPerPrompt, int width, int height, int steps, double guidanceScale,
                          long[] seeds, int maxSequenceLength, List<Direction> guidance, Tensor latents, NormControl normControl) {
        /** Without norm control ({@link NormControl#NONE}). */
        public Request(List<String> prompts, int imagesPerPrompt, int width, int height, int steps, double guidanceScale,
                       long[] seeds, int maxSequenceLength, List<Direction> guidance, Tensor latents) {
            this(prompts, imagesPerPrompt, width, height, steps, guidanceScale, seeds, maxSequenceLength, guidance, latents, NormControl.NONE);
        }

        public Request {
            if (normControl == null) normControl = NormControl.NONE;
            if (prompts == null || prompts.isEmpty()) throw new IllegalArgumentException("at least one prompt is required");
            if (imagesPerPrompt < 1) throw new IllegalArgumentException("images per prompt must be >= 1");
            if (width < 16 || height < 16 || width % 16 != 0 || height % 16 != 0) {
                throw new IllegalArgumentException("width and height must be positive multiples of 16, got " + width + "x" + height);
            }
            if (steps < 1) throw new IllegalArgumentException("steps must be >= 1, got " + steps);
            prompts = List.copyOf(prompts);
            guidance = guidance == null ? List.of() : List.copyOf(guidance);
        }

        public int batch() {
            return prompts.size() * imagesPerPrompt;
        }

        public long[] seedsPerImage() {
            long[] s = new long[batch()];
            for (int i = 0; i < s.length; i++) s[i] = seeds == null || seeds.length == 0 ? i : seeds.length == s.length ? seeds[i] : seeds[0] + i;
            if (seeds != null && seeds.length > 1 && seeds.length != s.length) {
                throw new IllegalArgumentException(seeds.length + " seeds for " + s.length + " images: give one seed, or one per image");
            }
            return s;
        }
    }



    /** Images [B·n, 3, H, W] in [0, 1] (fp32, CPU) and the final packed latents; owned by this result. */
    public record Result(Tensor images, Tensor finalLatents, Timings timings) implements AutoCloseable {
        @Override
        public void close() {
            Native.release(images);
            Native.release(finalLatents);
        }
    }

    public FluxPipeline(FluxTextEncoders text, FluxTransformer transformer, AutoencoderKL vae, FlowMatchSchedulerConfig schedulerConfig) {
        this.text = text;
        this.transformer = transformer;
        this.vae = vae;
        this.scheduler = FlowMatchEulerScheduler.flux(schedulerConfig);
        this.dtype = transformer.dtype();
    }

    /** A diffusers FLUX folder ({@code model_index.json} with transformer, vae, scheduler and both text encoders). */
    public static FluxPipeline load(Path folder, DType dtype, DeviceSpec device) {
        if (!Files.isRegularFile(folder.resolve("model_index.json"))) {
            throw new ModelFormatException(folder + ": no model_index.json (expected a diffusers FLUX folder)");
        }
        List<AutoCloseable> loaded = new ArrayList<>();
        try {
            FluxTextEncoders text = Modules.track(loaded, FluxTextEncoders.load(folder, dtype));
            FluxTransformer transformer = Modules.track(loaded, FluxTransformer.load(folder.resolve("transformer"), dtype, null, device));
            AutoencoderKL vae = Modules.track(loaded, AutoencoderKL.load(folder.resolve("vae"), dtype, device));
            FlowMatchSchedulerConfig sched = Files.isDirectory(folder.resolve("scheduler"))
                    ? FlowMatchSchedulerConfig.fromFile(folder.resolve("scheduler"))
                    : transformer.config().guidanceEmbeds() ? FlowMatchSchedulerConfig.fluxDev() : FlowMatchSchedulerConfig.fluxSchnell();
            checkWidths(folder.toString(), text, transformer);
            return new FluxPipeline(text, transformer, vae, sched);
        } catch (RuntimeException e) {
            loaded.forEach(io.mmdit4j.nn.Modules::closeQuietly);
            throw e;
        }
    }

    /**
     * The original layout: a BFL transformer file, {@code ae.safetensors}, and a folder with the text encoders and
     * tokenizers ({@code tokenizer/}, {@code text_encoder/}, {@code tokenizer_2/}, {@code text_encoder_2/}).
     * The scheduler is FLUX's own for the detected variant.
     */
    public static FluxPipeline loadParts(Path transformerFile, Path aeFile, Path textEncoders, DType dtype, DeviceSpec device) {
        List<AutoCloseable> loaded = new ArrayList<>();
        try {
            FluxTextEncoders text = Modules.track(loaded, FluxTextEncoders.load(textEncoders, dtype));
            FluxTransformer transformer = Modules.track(loaded, FluxTransformer.load(transformerFile, dtype, null, device));
            AutoencoderKL vae = Modules.track(loaded, AutoencoderKL.load(aeFile, dtype, device));
            checkWidths(transformerFile.toString(), text, transformer);
            return new FluxPipeline(text, transformer, vae,
                    transformer.config().guidanceEmbeds() ? FlowMatchSchedulerConfig.fluxDev() : FlowMatchSchedulerConfig.fluxSchnell());
        } catch (RuntimeException e) {
            loaded.forEach(io.mmdit4j.nn.Modules::closeQuietly);
            throw e;
        }
    }


    private static void checkWidths(String origin, FluxTextEncoders text, FluxTransformer t) {
        if (text.jointDim() != t.config().jointAttentionDim() || text.pooledDim() != t.config().pooledProjectionDim()) {
            throw new ModelFormatException(origin + ": text encoders give T5 width " + text.jointDim() + " and CLIP width " + text.pooledDim()
                    + ", but the transformer expects " + t.config().jointAttentionDim() + " and " + t.config().pooledProjectionDim());
        }
    }

    public FluxTransformer transformer() { return transformer; }
    public AutoencoderKL vae() { return vae; }
    public FluxTextEncoders textEncoders() { return text; }
    public FlowMatchEulerScheduler scheduler() { return scheduler; }

    // ---------------------------------------------------------------- steps

    public FluxTextEncoders.Embeddings encode(Request r) {
        return text.encode(r.prompts(), r.imagesPerPrompt(), r.maxSequenceLength());
    }

    /** Initial packed latents [B·n, N, 64] in the model dtype: the request's latents, else seeded noise per image. Caller-owned. */
    public Tensor noise(Request r) {
        try (PointerScope scope = new PointerScope()) {
            long[] shape = Noise.fluxLatentShape(r.batch(), r.height(), r.width());
            Tensor unpacked;
            if (r.latents() != null) {
                if (!Arrays.equals(Tensors.shape(r.latents()), shape)) {
                    throw new IllegalArgumentException("latents have shape " + Arrays.toString(Tensors.shape(r.latents())) + ", expected "
                            + Arrays.toString(shape));
                }
                unpacked = r.latents().to(dtype.scalarType());
            } else {
                unpacked = Noise.randnPerRow(shape, r.seedsPerImage(), dtype);
            }
            return Tensors.keep(FluxLatents.pack(unpacked).contiguous());
        }
    }

    /** The request's guidance directions as a plan (deltas computed once for the whole request). */
    public ModulationGuidance guidance(Request r) {
        ModulationGuidance.Builder b = ModulationGuidance.builder().normControl(r.normControl());
        for (Direction d : r.guidance()) {
            if (d.rowWeights() != null && d.rowWeights().length != r.batch()) {
                throw new IllegalArgumentException("guidance '" + d.label() + "': " + d.rowWeights().length + " row weights for " + r.batch() + " images");
            }
            d.layers().factors(transformer.config().totalBlocks()); // reject out-of-range layers before any work
            b.add(new GuidanceTerm(d.label(), text.direction(transformer, d.pos(), d.neg()), d.w(), d.layers(), d.steps(), d.rowWeights()));
        }
        return b.build();
    }

    /** The denoising loop from packed latents; returns the final packed latents (caller-owned) and fills stepNanos. */
    public Tensor denoise(Request r, FluxTextEncoders.Embeddings emb, Tensor latents, ModulationGuidance guidance, Progress progress,
                          ConditioningObserver observer, long[] stepNanos) {
        long tokens = latents.size(1);
        Schedule schedule = scheduler.schedule(r.steps(), (int) tokens);
        long rows = (long) r.height() / 16, cols = (long) r.width() / 16;
        try (PointerScope scope = new PointerScope()) {
            Tensor imgIds = FluxInputs.imageIds(rows, cols);
            Tensor guidanceArg = transformer.config().guidanceEmbeds() ? FluxTimesteps.pipelineGuidance(r.guidanceScale(), r.batch()) : null;
            try (Rope rope = transformer.rope(emb.textIds(), imgIds)) {
                Tensor x = latents;
                for (int i = 0; i < schedule.steps(); i++) {
                    long t0 = System.nanoTime();
                    try (PointerScope step = new PointerScope()) {
                        // pipelineTimestep, forward and step hand out owned tensors: closed here, not by the scope
                        Tensor t = FluxTimesteps.pipelineTimestep(schedule, i, r.batch(), Tensors.dtype(x));
                        FluxInputs in = new FluxInputs(x, emb.promptEmbeds(), emb.pooled(), t, guidanceArg, imgIds, emb.textIds());
                        Tensor v = transformer.forward(in, guidance, i, rope, observer);
                        Tensor next = schedule.step(v, i, x);
                        v.close();
                        t.close();
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
                return x == latents ? Tensors.keep(x.clone()) : x;
            } finally {
                Native.release(guidanceArg); // handed out owned by pipelineGuidance
            }
        }
    }

    /** Packed latents → images [B, 3, H, W] in [0, 1], fp32 on the CPU. Caller-owned. */
    public Tensor decode(Tensor packed, int width, int height) {
        try (PointerScope scope = new PointerScope()) {
            Tensor unpacked = FluxLatents.unpack(packed, 2L * (height / 16), 2L * (width / 16));
            Tensor decoded = vae.decodeScaled(unpacked);
            Tensor image = vae.toImage(decoded);
            Tensor cpu = image.to(new org.bytedeco.pytorch.Device("cpu"), org.bytedeco.pytorch.global.torch.ScalarType.Float);
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
        long t0 = System.nanoTime();
        try (FluxTextEncoders.Embeddings emb = encode(r); ModulationGuidance g = guidance(r)) {
            TimedGeneration.Output o = TimedGeneration.denoiseAndDecode(System.nanoTime() - t0, r.steps(), stepNanos -> {
                try (Tensor noise = noise(r)) {
                    return denoise(r, emb, noise, g, progress, null, stepNanos);
                }
            }, latents -> decode(latents, r.width(), r.height()));
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
