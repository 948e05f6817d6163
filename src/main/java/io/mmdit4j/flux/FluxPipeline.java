package io.mmdit4j.flux;

import io.mmdit4j.guidance.BlockConditioning;
import io.mmdit4j.guidance.ConditioningObserver;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.guidance.ModulationVisitor;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.lora.LoraAdapter;
import io.mmdit4j.lora.LoraReport;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.nn.Rope;
import io.mmdit4j.pipeline.EmbeddedGuidance;
import io.mmdit4j.pipeline.FamilyPipeline;
import io.mmdit4j.pipeline.GenerationOption;
import io.mmdit4j.pipeline.GenerationSettings;
import io.mmdit4j.pipeline.LatentPreview;
import io.mmdit4j.pipeline.LatentSpace;
import io.mmdit4j.pipeline.NegativePrompts;
import io.mmdit4j.pipeline.RandomDraws;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Offloadable;
import io.mmdit4j.runtime.Scopes;
import io.mmdit4j.runtime.StepGraph;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.runtime.Transfers;
import io.mmdit4j.sampling.FlowMatchEulerScheduler;
import io.mmdit4j.sampling.FlowMatchSchedulerConfig;
import io.mmdit4j.sampling.FluxTimesteps;
import io.mmdit4j.sampling.Noise;
import io.mmdit4j.sampling.Schedule;
import io.mmdit4j.sampling.StepTable;
import io.mmdit4j.vae.AutoencoderKL;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

import static org.bytedeco.pytorch.global.torch.cat;

/**
 * FLUX.1 text-to-image as diffusers' {@code FluxPipeline.__call__}: prompts → T5 + CLIP → seeded noise → packed
 * latents → flow-matching Euler loop with per-step, per-row modulation guidance → unpack → VAE → images in [0, 1].
 * The shared skeleton ({@link io.mmdit4j.pipeline.Pipeline#generate}) runs the steps; they are also public for callers
 * that need intermediate results.
 */
public final class FluxPipeline implements FamilyPipeline<FluxTextEncoders.Embeddings> {
    /** CLIP + T5: resident, or with {@code --offload text} released after each request's text phase and loaded again by the next. */
    private final Offloadable<FluxTextEncoders> text;
    private final FluxTransformer transformer;
    private final AutoencoderKL vae;
    private final FlowMatchEulerScheduler scheduler;
    private final DType dtype;
    /** Records each request's denoising step as a graph ({@code --cuda-graphs}); null: eager steps. */
    private volatile StepGraph.Capture stepCapture;

    public FluxPipeline(FluxTextEncoders text, FluxTransformer transformer, AutoencoderKL vae, FlowMatchSchedulerConfig schedulerConfig) {
        this(Offloadable.resident("FLUX text encoders", () -> text), transformer, vae, schedulerConfig);
    }

    private FluxPipeline(Offloadable<FluxTextEncoders> text, FluxTransformer transformer, AutoencoderKL vae, FlowMatchSchedulerConfig schedulerConfig) {
        checkWidths("FLUX pipeline", text.acquire(), transformer); // offloaded: loaded now, released after the first request's text
        this.text = text;
        this.transformer = transformer;
        this.vae = vae;
        this.scheduler = new FlowMatchEulerScheduler(schedulerConfig, FluxFamily.SIGMA_SPACING);
        this.dtype = transformer.dtype();
    }

    /** A diffusers FLUX folder ({@code model_index.json} with transformer, vae, scheduler and both text encoders). */
    public static FluxPipeline load(Path folder, DType dtype, DeviceSpec device) {
        return load(folder, dtype, device, false);
    }

    /** As {@link #load(Path, DType, DeviceSpec)}, optionally with the transformer's blocks offloaded ({@link FluxTransformer#offload}). */
    public static FluxPipeline load(Path folder, DType dtype, DeviceSpec device, boolean offloadBlocks) {
        return load(folder, dtype, device, offloadBlocks, false);
    }

    /** As {@link #load(Path, DType, DeviceSpec, boolean)}; {@code offloadText}: the text encoders are released after each request's text. */
    public static FluxPipeline load(Path folder, DType dtype, DeviceSpec device, boolean offloadBlocks, boolean offloadText) {
        if (!Files.isRegularFile(folder.resolve("model_index.json"))) {
            throw new ModelFormatException(folder + ": no model_index.json (expected a diffusers FLUX folder)");
        }
        return Modules.loading(loaded -> {
            Offloadable<FluxTextEncoders> text = Modules.track(loaded,
                    Offloadable.of("FLUX text encoders", () -> FluxTextEncoders.load(folder, dtype, device), offloadText));
            FluxTransformer transformer = Modules.track(loaded, FluxTransformer.load(folder.resolve("transformer"), dtype, null, device, offloadBlocks));
            AutoencoderKL vae = Modules.track(loaded, AutoencoderKL.load(folder.resolve("vae"), dtype, device));
            FlowMatchSchedulerConfig sched = Files.isDirectory(folder.resolve("scheduler"))
                    ? FlowMatchSchedulerConfig.fromFile(folder.resolve("scheduler")) : defaultScheduler(transformer);
            return new FluxPipeline(text, transformer, vae, sched);
        });
    }

    /**
     * The original layout: a BFL transformer file, {@code ae.safetensors}, and a folder with the text encoders and
     * tokenizers ({@code tokenizer/}, {@code text_encoder/}, {@code tokenizer_2/}, {@code text_encoder_2/}).
     * The scheduler is FLUX's own for the detected variant.
     */
    public static FluxPipeline loadParts(Path transformerFile, Path aeFile, Path textEncoders, DType dtype, DeviceSpec device) {
        return loadParts(transformerFile, aeFile, textEncoders, dtype, device, false);
    }

    /** As {@link #loadParts(Path, Path, Path, DType, DeviceSpec)}, optionally with the transformer's blocks offloaded. */
    public static FluxPipeline loadParts(Path transformerFile, Path aeFile, Path textEncoders, DType dtype, DeviceSpec device, boolean offloadBlocks) {
        return loadParts(transformerFile, aeFile, textEncoders, dtype, device, offloadBlocks, false);
    }

    /** As {@link #loadParts(Path, Path, Path, DType, DeviceSpec, boolean)}, optionally with the text encoders offloaded. */
    public static FluxPipeline loadParts(Path transformerFile, Path aeFile, Path textEncoders, DType dtype, DeviceSpec device, boolean offloadBlocks,
                                         boolean offloadText) {
        return Modules.loading(loaded -> {
            Offloadable<FluxTextEncoders> text = Modules.track(loaded,
                    Offloadable.of("FLUX text encoders", () -> FluxTextEncoders.load(textEncoders, dtype, device), offloadText));
            FluxTransformer transformer = Modules.track(loaded, FluxTransformer.load(transformerFile, dtype, null, device, offloadBlocks));
            AutoencoderKL vae = Modules.track(loaded, AutoencoderKL.load(aeFile, dtype, device));
            return new FluxPipeline(text, transformer, vae, defaultScheduler(transformer));
        });
    }

    private static FlowMatchSchedulerConfig defaultScheduler(FluxTransformer t) {
        return t.config().guidanceEmbeds() ? FlowMatchSchedulerConfig.fluxDev() : FlowMatchSchedulerConfig.fluxSchnell();
    }

    private static void checkWidths(String origin, FluxTextEncoders text, FluxTransformer t) {
        if (text.jointDim() != t.config().jointAttentionDim() || text.pooledDim() != t.config().pooledProjectionDim()) {
            throw new ModelFormatException(origin + ": text encoders give T5 width " + text.jointDim() + " and CLIP width " + text.pooledDim()
                    + ", but the transformer expects " + t.config().jointAttentionDim() + " and " + t.config().pooledProjectionDim());
        }
    }

    public FluxTransformer transformer() { return transformer; }
    public AutoencoderKL vae() { return vae; }
    /** The text encoders (loaded again if they were offloaded). */
    public FluxTextEncoders textEncoders() { return text.acquire(); }

    /** The text encoders as a part that may be offloaded ({@code --offload text}). */
    public Offloadable<FluxTextEncoders> textEncodersPart() { return text; }

    /** Offloaded text encoders are released once a request's prompts and guidance directions are encoded. */
    @Override
    public void textEncodersDone() { text.release(); }
    public FlowMatchEulerScheduler scheduler() { return scheduler; }

    @Override public int numGuidedBlocks() { return transformer.config().totalBlocks(); }
    @Override public DType dtype() { return dtype; }
    @Override public DeviceSpec device() { return transformer.device(); }

    /** Embedded guidance for guidance-distilled models (dev); schnell has no guidance embedding. */
    @Override
    public Set<Class<? extends GenerationOption>> supportedOptions() {
        return FluxFamily.options(transformer.config());
    }

    /**
     * The step is graph-safe: everything it reads besides the latents and the step's timestep (which go through the
     * graph's static buffers) is per-request state the velocity owns for the whole loop, and guidance's per-step choices
     * are the graph's variant ({@link ModulationGuidance#stepSignature}). Modulation statistics (an observer) run eager.
     */
    @Override
    public void useStepGraphs(StepGraph.Capture capture) {
        this.stepCapture = capture;
    }

    @Override
    public LoraReport applyLora(LoraAdapter lora, double scale, boolean strict) {
        return lora.applyTo(transformer, scale, strict);
    }

    // ---------------------------------------------------------------- steps

    /** The prompts' embeddings; with true CFG the transformer batch {@code [negative; positive]} (2·images rows). Caller-owned. */
    @Override
    public FluxTextEncoders.Embeddings encode(GenerationSettings s) {
        FluxTextEncoders.Embeddings pos = text.acquire().encode(s.prompts(), s.imagesPerPrompt(), s.maxSequenceLength());
        if (!cfg(s)) return pos;
        List<String> negatives = s.negativePrompts().negatives(s.prompts().size());
        try (FluxTextEncoders.Embeddings neg = text.acquire().encode(negatives, s.imagesPerPrompt(), s.maxSequenceLength());
             PointerScope scope = new PointerScope()) {
            return new FluxTextEncoders.Embeddings(Tensors.keep(cat(new TensorVector(neg.promptEmbeds(), pos.promptEmbeds()), 0)),
                    Tensors.keep(cat(new TensorVector(neg.pooled(), pos.pooled()), 0)), Tensors.keep(pos.textIds().clone()));
        } finally {
            pos.close();
        }
    }

    @Override
    public Tensor delta(String pos, String neg) {
        return text.acquire().direction(transformer, pos, neg);
    }

    /** FLUX's sigmas for the request: {@code linspace(1, 1/N, N)} shifted by the scheduler (dynamically by image size). */
    @Override
    public Schedule schedule(GenerationSettings s) {
        return scheduler.schedule(s.steps(), Noise.fluxImageSeqLen(s.height(), s.width()));
    }

    /** Initial packed latents [B·n, N, 64] in the model dtype: the request's latents (unpacked [B·n, 16, h, w]), else seeded noise per image. Caller-owned. */
    @Override
    public Tensor noise(GenerationSettings s) {
        try (RandomDraws draws = RandomDraws.of(s); PointerScope scope = new PointerScope()) {
            return Tensors.keep(FluxLatents.pack(Scopes.adopt(draws.initial(latentShape(s), dtype))).contiguous()); // the draw dies with the scope
        }
    }

    /** FluxPipeline's unpacked latent shape {@code [B·n, 16, 2·⌊H/16⌋, 2·⌊W/16⌋]}. */
    private static long[] latentShape(GenerationSettings s) {
        return Noise.fluxLatentShape(s.images(), s.height(), s.width());
    }

    /** The VAE's latents, packed into 2×2 tokens for the sampler (image-to-image, inpainting). */
    @Override
    public LatentSpace latentSpace() {
        return LatentSpace.of(vae, dtype, FluxPipeline::latentShape, FluxLatents::pack);
    }

    @Override
    public Velocity velocity(GenerationSettings s, Schedule schedule, FluxTextEncoders.Embeddings emb, ModulationGuidance guidance,
                             ConditioningObserver observer) {
        int batch = s.images();
        boolean cfg = cfg(s);
        int rows = cfg ? 2 * batch : batch;
        if (emb.promptEmbeds().size(0) != rows) {
            throw new IllegalArgumentException("conditioning has " + emb.promptEmbeds().size(0) + " rows, expected " + rows + " for this request");
        }
        Scalar scale = cfg ? new Scalar(s.negativePrompts().scale()) : null;
        EmbeddedGuidance g = s.option(EmbeddedGuidance.class);
        DeviceSpec device = device();
        // every per-request input goes to the device once, here: a step copies nothing from the host
        Tensor imgIds = null, guidanceArg = null, prompt = null, pooled = null;
        StepTable timesteps = null;
        Rope rope = null;
        try (PointerScope scope = new PointerScope()) {
            imgIds = Tensors.keep(FluxInputs.imageIds(s.height() / 16, s.width() / 16));
            guidanceArg = transformer.config().guidanceEmbeds()
                    ? Transfers.toOwned(io.mmdit4j.runtime.Scopes.adopt(FluxTimesteps.pipelineGuidance(g == null ? 3.5 : g.scale(), rows)), device)
                    : null;
            rope = transformer.rope(emb.textIds(), imgIds);
            prompt = Transfers.toOwned(emb.promptEmbeds(), device);
            pooled = Transfers.toOwned(emb.pooled(), device);
            timesteps = StepTable.of(schedule.steps(),
                    i -> io.mmdit4j.runtime.Scopes.adopt(FluxTimesteps.pipelineTimestep(schedule, i, rows, dtype)), device);
        } catch (RuntimeException e) {
            Native.release(imgIds);
            Native.release(guidanceArg);
            Native.release(prompt);
            Native.release(pooled);
            if (timesteps != null) timesteps.close();
            if (rope != null) rope.close();
            if (scale != null) scale.close();
            throw e;
        }
        Tensor ids = imgIds, gArg = guidanceArg, txt = prompt, pool = pooled;
        StepTable ts = timesteps;
        Rope r = rope;
        StepGraph.Capture capture = observer == null ? stepCapture : null; // an observer reads each step's vectors: eager
        StepGraph graph = capture == null ? null : new StepGraph(capture);
        return new Velocity() {
            @Override
            public Tensor at(Tensor x, int i) {
                try (PointerScope scope = new PointerScope()) { // forward hands out an owned tensor
                    Tensor t = Tensors.dtype(x) == dtype ? ts.at(i)
                            : io.mmdit4j.runtime.Scopes.adopt(FluxTimesteps.pipelineTimestep(schedule, i, rows, Tensors.dtype(x)));
                    if (graph == null) return step(x, t, i);
                    // x [B, N, 64] and t [rows] through static buffers; the step index only through the guidance variant
                    String variant = guidance.stepSignature(i, rows, numGuidedBlocks());
                    return graph.run(variant, List.of(x, t), in -> step(in.get(0), in.get(1), i));
                }
            }

            /** One step's prediction from latents {@code x} and timesteps {@code t}: the forward (and true CFG). Owned. */
            private Tensor step(Tensor x, Tensor t, int i) {
                try (PointerScope scope = new PointerScope()) {
                    Tensor in = cfg ? cat(new TensorVector(x, x), 0) : x;
                    Tensor out = transformer.forward(new FluxInputs(in, txt, pool, t, gArg, ids, emb.textIds()), guidance, i, r, observer); // owned
                    if (!cfg) return out;
                    Tensor v = NegativePrompts.combine(out, scale); // diffusers' true CFG: neg + scale·(pos − neg)
                    out.close();
                    return Tensors.keep(v);
                }
            }

            @Override
            public void close() {
                if (graph != null) graph.close(); // before the tensors its graphs read
                if (scale != null) scale.close();
                r.close();
                ts.close();
                Native.release(ids);
                Native.release(gArg);
                Native.release(txt);
                Native.release(pool);
            }
        };
    }

    // ---------------------------------------------------------------- row stepping

    /** A one-image request's encoding depends on its prompt, text length and, with true CFG, its negative prompt. */
    @Override
    public Object encodingKey(GenerationSettings oneImage) {
        if (oneImage.images() != 1) return null;
        List<String> negatives = cfg(oneImage) ? oneImage.negativePrompts().negatives(1) : null;
        return java.util.Arrays.asList(oneImage.prompts(), oneImage.maxSequenceLength(), negatives);
    }

    @Override
    public Tensor spatialLatents(Tensor packed, GenerationSettings s) {
        try (PointerScope scope = new PointerScope()) {
            return Tensors.keep(FluxLatents.unpack(packed, 2L * (s.height() / 16), 2L * (s.width() / 16)));
        }
    }

    /**
     * FLUX takes a timestep (and an embedded guidance value) per row, so the images of requests at different steps share
     * one forward: latents, T5 states and CLIP vectors stacked, each part's timestep as {@link #velocity} computes it, its
     * own embedded guidance scale, and the parts' guidance plans stacked at their own steps. RoPE tables are cached per
     * size and text length. A part with true CFG brings {@code [x; x]} against its {@code [negative; positive]} text and is
     * combined with its own scale after the forward, as {@link #velocity} does; parts with and without it share forwards.
     */
    @Override
    public RowForward<FluxTextEncoders.Embeddings> rowForward() {
        return new RowForward<>() {
            private final java.util.Map<List<Integer>, Object[]> layouts = new java.util.LinkedHashMap<>(); // [imgIds, rope]
            private final io.mmdit4j.guidance.ModulationGuidance.Stacker plans = new io.mmdit4j.guidance.ModulationGuidance.Stacker();

            @Override
            public List<Tensor> at(List<RowPart<FluxTextEncoders.Embeddings>> parts) {
                GenerationSettings first = parts.get(0).settings();
                Object[] layout = layout(first.height(), first.width(), parts.get(0).conditioning().textIds());
                int n = parts.size();
                Tensor[] xs = new Tensor[n], states = new Tensor[n], pooled = new Tensor[n];
                List<io.mmdit4j.guidance.ModulationGuidance> guidance = new ArrayList<>(n);
                int[] rows = new int[n], steps = new int[n];
                int batch = 0;
                for (RowPart<FluxTextEncoders.Embeddings> p : parts) batch += cfg(p.settings()) ? 2 * p.settings().images() : p.settings().images();
                float[] ts = new float[batch], gs = new float[batch];
                try (PointerScope scope = new PointerScope()) {
                    int row = 0;
                    for (int k = 0; k < n; k++) {
                        RowPart<FluxTextEncoders.Embeddings> p = parts.get(k);
                        GenerationSettings s = p.settings();
                        if (s.width() != first.width() || s.height() != first.height() || s.maxSequenceLength() != first.maxSequenceLength()
                                || Tensors.dtype(p.latents()) != Tensors.dtype(parts.get(0).latents())) {
                            throw new IllegalArgumentException("parts of " + s.width() + "x" + s.height() + " with " + s.maxSequenceLength()
                                    + " text tokens and " + first.width() + "x" + first.height() + " with " + first.maxSequenceLength() + " cannot share a forward");
                        }
                        boolean cfg = cfg(s);
                        rows[k] = cfg ? 2 * s.images() : s.images();
                        if (p.conditioning().promptEmbeds().size(0) != rows[k]) {
                            throw new IllegalArgumentException("conditioning has " + p.conditioning().promptEmbeds().size(0) + " rows, expected " + rows[k]);
                        }
                        xs[k] = cfg ? cat(new TensorVector(p.latents(), p.latents()), 0) : p.latents();
                        states[k] = p.conditioning().promptEmbeds();
                        pooled[k] = p.conditioning().pooled();
                        EmbeddedGuidance g = s.option(EmbeddedGuidance.class);
                        for (int i = 0; i < rows[k]; i++, row++) {
                            ts[row] = p.schedule().timestep(p.step());
                            gs[row] = (float) (g == null ? 3.5 : g.scale()); // full([B], scale, float32) rounds the same way
                        }
                        guidance.add(p.guidance());
                        steps[k] = p.step();
                    }
                    // each row's argument as velocity() makes it, elementwise: t.to(latents dtype) / 1000, guidance in float32
                    // the rows' steps differ from forward to forward: their timesteps (and guidance) go to the device each time
                    Tensor t = Transfers.to(Tensors.fromFloats(ts, batch), device(), Tensors.dtype(parts.get(0).latents()).scalarType())
                            .div(new org.bytedeco.pytorch.Scalar(1000L));
                    Tensor gArg = transformer.config().guidanceEmbeds() ? Transfers.to(Tensors.fromFloats(gs, batch), device()) : null;
                    Tensor out = transformer.forward(new FluxInputs(stackRows(xs), stackRows(states), stackRows(pooled), t, gArg, (Tensor) layout[0],
                            parts.get(0).conditioning().textIds()), plans.stack(guidance, rows, steps), 0, (Rope) layout[1], null);
                    List<Tensor> split = new ArrayList<>(n);
                    long offset = 0;
                    for (int k = 0; k < n; k++) {
                        GenerationSettings s = parts.get(k).settings();
                        Tensor part = out.narrow(0, offset, rows[k]);
                        offset += rows[k];
                        if (!cfg(s)) {
                            split.add(Tensors.keep(part));
                            continue;
                        }
                        split.add(Tensors.keep(s.negativePrompts().combine(part))); // diffusers' true CFG: neg + scale·(pos − neg)
                    }
                    out.close();
                    return split;
                }
            }

            private Object[] layout(int height, int width, Tensor textIds) {
                List<Integer> key = List.of(height, width, (int) textIds.size(0));
                Object[] l = layouts.get(key);
                if (l != null) return l;
                if (layouts.size() >= 8) close(); // a handful of sizes at a time; rebuilt on demand
                try (PointerScope scope = new PointerScope()) {
                    Tensor ids = Tensors.keep(FluxInputs.imageIds(height / 16, width / 16));
                    try {
                        l = new Object[] {ids, transformer.rope(textIds, ids)};
                    } catch (RuntimeException e) {
                        ids.close();
                        throw e;
                    }
                }
                layouts.put(key, l);
                return l;
            }

            @Override
            public void close() {
                plans.close();
                for (Object[] l : layouts.values()) {
                    Native.release((Tensor) l[0]);
                    ((Rope) l[1]).close();
                }
                layouts.clear();
            }
        };
    }

    /** The parts' rows as one batch (the tensor itself for one part); a temporary of the caller's scope. */
    private static Tensor stackRows(Tensor[] parts) {
        return parts.length == 1 ? parts[0] : org.bytedeco.pytorch.global.torch.cat(new org.bytedeco.pytorch.TensorVector(parts), 0);
    }


    /** ComfyUI's FLUX latent-to-RGB preview of packed latents (unpacked first). */
    @Override
    public Tensor preview(Tensor packed, GenerationSettings s) {
        long[] shape = latentShape(s);
        try (PointerScope scope = new PointerScope()) {
            return LatentPreview.FLUX.rgb(FluxLatents.unpack(packed, shape[2], shape[3]));
        }
    }

    /** Packed latents → images [B, 3, H, W] in [0, 1], fp32 on the CPU. Caller-owned. */
    @Override
    public Tensor decode(Tensor packed, GenerationSettings s) {
        return decode(packed, s.width(), s.height());
    }

    /** Packed latents of a {@code width}×{@code height} image → images [B, 3, H, W] in [0, 1], fp32 on the CPU. Caller-owned. */
    public Tensor decode(Tensor packed, int width, int height) {
        try (PointerScope scope = new PointerScope()) {
            return vae.decodeToImages(FluxLatents.unpack(packed, 2L * (height / 16), 2L * (width / 16)));
        }
    }

    @Override
    public void modulations(BlockConditioning cond, ModulationVisitor visitor) {
        transformer.modulations(cond, visitor);
    }

    @Override
    public void close() {
        Modules.closeAll(text, transformer, vae);
    }
}
