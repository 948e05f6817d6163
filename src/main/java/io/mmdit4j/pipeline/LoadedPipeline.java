package io.mmdit4j.pipeline;

import io.mmdit4j.guidance.BlockConditioning;
import io.mmdit4j.guidance.ConditioningObserver;
import io.mmdit4j.guidance.GuidancePlan;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.guidance.ModulationVisitor;
import io.mmdit4j.io.CheckpointFiles;
import io.mmdit4j.lora.LoraAdapter;
import io.mmdit4j.lora.LoraReport;
import io.mmdit4j.lora.LoraSpec;
import io.mmdit4j.models.ModelDescriptor;
import io.mmdit4j.models.ModelFamily;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.sampling.Denoiser;
import io.mmdit4j.sampling.NonFiniteException;
import io.mmdit4j.sampling.Sampler;
import io.mmdit4j.sampling.Schedule;
import io.mmdit4j.sampling.StepListener;
import io.mmdit4j.sampling.Timings;
import org.bytedeco.pytorch.Tensor;

import io.mmdit4j.runtime.Native;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The {@link Pipeline} of every family: the one generation skeleton around a family's {@link FamilyPipeline}. */
final class LoadedPipeline implements Pipeline {
    private final PreparedModel prepared;
    private final FamilyPipeline<?> impl;
    private final List<LoraAdapter> adapters;
    private final List<LoraReport> reports;
    private final CheckpointFiles files; // what the weights were read from: checked before each phase of a generation
    /**
     * Guidance deltas by (p+, p−): they depend only on the loaded weights, so each distinct direction is encoded once per
     * pipeline (sweeps and servers reuse a few directions across many requests). Bounded, least recently used first out.
     */
    private final Map<List<String>, Tensor> deltas = new LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<List<String>, Tensor> eldest) {
            if (size() <= DELTA_CACHE) return false;
            Native.release(eldest.getValue());
            return true;
        }
    };
    private static final int DELTA_CACHE = 256;
    /** The VAE's lock: decodes (and init-image encodes) run one at a time, beside the pipeline's denoising. */
    private final Object vae = new Object();
    /** Where decodes run on CUDA: a stream beside the denoising one (a no-op elsewhere). */
    private final io.mmdit4j.runtime.SideStream decodeStream;

    private LoadedPipeline(PreparedModel prepared, FamilyPipeline<?> impl, List<LoraAdapter> adapters, List<LoraReport> reports,
                           CheckpointFiles files) {
        this.prepared = prepared;
        this.files = files;
        this.impl = impl;
        this.adapters = adapters;
        this.reports = List.copyOf(reports);
        this.decodeStream = io.mmdit4j.runtime.SideStream.open(impl.device());
    }

    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(LoadedPipeline.class);

    static LoadedPipeline load(PreparedModel p) {
        long t0 = System.nanoTime();
        CheckpointFiles files = new CheckpointFiles(p.options().memoryMapped());
        FamilyPipeline<?> impl = files.load(() -> p.family().load(p.path(), p.options()));
        List<LoraAdapter> adapters = new ArrayList<>();
        List<LoraReport> reports = new ArrayList<>();
        try {
            for (LoraSpec l : p.options().loras()) {
                LoraAdapter a = files.load(() -> LoraAdapter.read(l.file()));
                adapters.add(a);
                reports.add(impl.applyLora(a, l.scale(), p.options().loraStrict()));
            }
            io.mmdit4j.runtime.StepGraph.Capture capture = stepCapture(p.options());
            if (capture != null) {
                impl.useStepGraphs(capture);
                LOG.info("denoising steps run as recorded graphs ({})", capture.name());
            }
            LOG.info(String.format(java.util.Locale.ROOT, "loaded %s (%s, %s on %s, %s) in %.2f s", p.path(), p.family().name(),
                    impl.dtype().torchName(), impl.device(), p.options().memoryMapped() ? "mapped" : "read into memory", (System.nanoTime() - t0) / 1e9));
            reports.forEach(r -> LOG.info("LoRA: {}", r.summary()));
            return new LoadedPipeline(p, impl, adapters, reports, files);
        } catch (RuntimeException | Error e) {
            adapters.forEach(LoraAdapter::close);
            impl.close();
            throw e;
        }
    }

    @Override public String model() { return prepared.model(); }
    @Override public ModelFamily family() { return prepared.family(); }
    @Override public ModelDescriptor descriptor() { return prepared.descriptor(); }
    @Override public DType dtype() { return impl.dtype(); }
    @Override public DeviceSpec device() { return impl.device(); }
    @Override public int numGuidedBlocks() { return impl.numGuidedBlocks(); }
    @Override public GenerationDefaults defaults() { return prepared.defaults(); }
    @Override public List<LoraReport> loraReports() { return reports; }
    @Override public java.util.Set<Class<? extends GenerationOption>> supportedOptions() { return impl.supportedOptions(); }

    @Override
    public GenerationSettings resolve(GenerationRequest request) {
        GenerationSettings s = impl.complete(prepared.resolve(request, impl.supportedOptions(), impl.numGuidedBlocks()));
        impl.validate(s);
        return s;
    }

    @Override
    public List<String> warnings(GenerationSettings s) {
        return GuidancePlan.warnings(s.guidance(), impl.numGuidedBlocks(), s.steps());
    }

    /**
     * Checks {@code s} completely and against the memory available (the weights are loaded: only the working set and the
     * results count), then generates it: as one batch, or in chunks of images ({@link MemoryPlanner}) whose outputs and
     * latents are put together in request order, so the result and its settings are those of the whole request. An
     * observer sees whole-batch forwards (statistics index rows by image), so an observed generation is never chunked.
     */
    @Override
    public synchronized GenerationResult generate(GenerationSettings s, StepListener listener, ConditioningObserver observer) {
        MemoryEstimate memory = checkBeforeWork(s);
        // in the loading scope of the weights: a part a family loads again for each use (HiDream's offloaded text encoders
        // and transformer) reads its files in the model's mode (--no-mmap), and fails if they changed since they were first opened
        return files.load(() -> memory.chunks() == 1 || observer != null || s.option(GivenDraws.class) != null ? run(impl, s, listener, observer)
                : runChunked(s, MemoryPlanner.chunks(s, memory.chunkImages()), listener));
    }

    /**
     * The checks of a generation before any work (also {@link RowStepper#start}): the family, every option and guidance
     * setting, the checkpoint files unchanged, and the memory estimate (returned) against the budget.
     */
    synchronized MemoryEstimate checkBeforeWork(GenerationSettings s) {
        if (!s.family().equals(family().name())) {
            throw new InvalidRequestException("settings of a " + s.family() + " model, but this pipeline is " + family().name());
        }
        check(impl, s);
        files.requireUnchanged(); // before any forward reads a page of a mapped checkpoint that shrank (SIGBUS) or was rewritten
        MemoryEstimate memory = prepared.memory(s, false);
        MemoryPlanner.check(memory, prepared.options().memoryBudget());
        return memory;
    }

    /** Whether the checkpoint files are as they were read (before a phase that reads weights). */
    void requireUnchanged() {
        files.requireUnchanged();
    }

    /**
     * Continuous batching on this model: a {@link RowStepper} steps the images of several requests in one forward, each at
     * its own step. Close it before the pipeline.
     */
    @Override
    public RowStepper rowStepper() {
        return new RowStepper(this, impl);
    }

    /** The step-graph capture the options ask for: the caller's, else CUDA's with {@code cudaGraphs}, else none. */
    private static io.mmdit4j.runtime.StepGraph.Capture stepCapture(LoadOptions o) {
        if (o.stepCapture() != null) return o.stepCapture();
        if (!o.cudaGraphs()) return null;
        try {
            return io.mmdit4j.runtime.StepGraph.cudaCapture();
        } catch (IllegalStateException e) {
            throw new UnsupportedOptionException("--cuda-graphs: " + e.getMessage());
        }
    }

    /** Everything that can be checked before any work. */
    private void check(FamilyPipeline<?> f, GenerationSettings s) {
        for (var o : s.options().keySet()) {
            if (!f.supportedOptions().contains(o)) throw new UnsupportedOptionException(GenerationOptions.describe(o) + ": not supported by this model");
        }
        try {
            GuidancePlan.check(s.guidance(), s.images(), f.numGuidedBlocks());
        } catch (IllegalArgumentException e) {
            throw e instanceof InvalidRequestException ? e : new InvalidRequestException(e.getMessage(), e);
        }
        family().validate(s);
        ImageToImage.check(s);
        f.validate(s);
    }

    /** The chunks one after the other, each an ordinary generation; their outputs and latents are copied into the whole. */
    private GenerationResult runChunked(GenerationSettings s, List<int[]> chunks, StepListener listener) {
        StepListener l = listener == null ? StepListener.NONE : listener;
        Tensor output = null, latents = null;
        long text = 0, decode = 0;
        long[] steps = null; // the steps run (fewer than s.steps() from an init image)
        try {
            for (int c = 0; c < chunks.size(); c++) {
                int from = chunks.get(c)[0], to = chunks.get(c)[1], chunk = c;
                Tensor noise = s.initialNoise() == null ? null : s.initialNoise().narrow(0, from, to - from);
                try (GenerationResult part = run(impl, s.chunk(from, to, noise), step -> l.onStep(step.inChunk(chunk, chunks.size())), null)) {
                    if (output == null) {
                        output = emptyLike(part.isVideo() ? part.frames() : part.images(), s.images());
                        latents = emptyLike(part.latents(), s.images());
                    }
                    copyRows(output, from, part.isVideo() ? part.frames() : part.images());
                    copyRows(latents, from, part.latents());
                    text += part.timings().textEncode();
                    decode += part.timings().decode();
                    if (steps == null) steps = new long[part.timings().steps().length];
                    for (int i = 0; i < steps.length; i++) steps[i] += part.timings().steps()[i];
                } finally {
                    if (noise != null) noise.close();
                }
            }
            GenerationResult r = new GenerationResult(output, latents, new Timings(text, steps, decode), s, warnings(s));
            output = null;
            latents = null;
            return r;
        } finally {
            Native.release(output);
            Native.release(latents);
        }
    }

    /** An uninitialised tensor like {@code part} with {@code rows} rows, owned by the caller. */
    private static Tensor emptyLike(Tensor part, int rows) {
        long[] shape = io.mmdit4j.runtime.Tensors.shape(part);
        shape[0] = rows;
        try (org.bytedeco.javacpp.PointerScope scope = new org.bytedeco.javacpp.PointerScope()) {
            return io.mmdit4j.runtime.Tensors.keep(org.bytedeco.pytorch.global.torch.empty(shape, part.options(), new org.bytedeco.pytorch.MemoryFormatOptional()));
        }
    }

    private static void copyRows(Tensor whole, int from, Tensor part) {
        try (org.bytedeco.javacpp.PointerScope scope = new org.bytedeco.javacpp.PointerScope()) {
            whole.narrow(0, from, part.size(0)).copy_(part);
        }
    }

    /** The skeleton: encode, guidance plan, schedule, noise, denoise, decode; everything released on any failure. */
    private <C extends AutoCloseable> GenerationResult run(FamilyPipeline<C> f, GenerationSettings s, StepListener listener,
                                                           ConditioningObserver observer) {
        try (Denoised d = denoiseStage(f, s, listener, observer)) {
            return decodeStage(f, d);
        }
    }

    /** Encode, guidance plan, schedule, noise, the denoising loop: the final latents, owned by the returned {@link Denoised}. */
    private <C extends AutoCloseable> Denoised denoiseStage(FamilyPipeline<C> f, GenerationSettings s, StepListener listener,
                                                            ConditioningObserver observer) {
        check(f, s);
        List<String> warnings = warnings(s);
        Schedule schedule = ImageToImage.truncate(f.schedule(s), s); // a bad sigma list fails before any work; an init image's strength
        io.mmdit4j.runtime.DeviceTimer timer = io.mmdit4j.runtime.DeviceTimer.of(f.device()); // CUDA: events, read after the loop
        Object textStart = timer.mark();
        try (C cond = f.encode(s);
             ModulationGuidance plan = GuidancePlan.build(s.guidance(), s.images(), f.cfg(s), f.numGuidedBlocks(), s.normControl(),
                     f.guideFinalNorm(), (pos, neg) -> delta(f, pos, neg))) {
            Object textEnd = timer.mark();
            f.textEncodersDone(); // offloaded text encoders go before the denoising's activations arrive
            long[] stepNanos = new long[schedule.steps()];
            Tensor latents;
            files.requireUnchanged(); // again before the first forward: text encoding can take a while
            ImageToImage.Start start;
            synchronized (vae) { // an init image is encoded by the VAE, which a decode on another thread may be using
                start = ImageToImage.start(f, s, schedule);
            }
            try (start; Sampler sampler = start.sampler(f.sampler(s, schedule));
                 FamilyPipeline.Velocity v = f.velocity(s, schedule, cond, plan, observer)) {
                StepListener l = listener == null ? StepListener.NONE : listener;
                latents = Denoiser.run(sampler, start.latents(), v, f.device(), step -> l.onStep(step.withPreview(x -> f.preview(x, s))), stepNanos);
            }
            long textNanos = timer.nanosBetween(textStart, textEnd);
            return new Denoised(s, warnings, textNanos, stepNanos, latents, io.mmdit4j.runtime.SideStream.mark(f.device()));
        } catch (Exception e) {
            throw rethrow(e);
        }
    }

    /**
     * The VAE decode of {@code d}'s latents into a result that owns them. Holds the VAE's lock, not the pipeline's, so it can
     * run on another thread while the pipeline denoises the next request; on CUDA it runs on {@link #decodeStream} after the
     * latents are complete. {@code d} keeps its latents if the decode fails.
     */
    private GenerationResult decodeStage(FamilyPipeline<?> f, Denoised d) {
        GenerationSettings s = d.settings();
        long t1 = System.nanoTime();
        Tensor latents = d.take();
        Tensor decoded;
        try {
            synchronized (vae) {
                files.requireUnchanged(); // and before the VAE reads its file, minutes later for a long run
                try (AutoCloseable stream = decodeStream.enter(d.ready());
                     io.mmdit4j.runtime.Placement.Scope placement = io.mmdit4j.runtime.Placement.checkIfEnabled(f.device())) {
                    decoded = files.load(() -> f.decode(latents, s)); // fp32 on the host: a blocking copy ends the side stream's work
                }
            }
            requireFinite(decoded);
        } catch (Error e) {
            d.giveBack(latents);
            throw e;
        } catch (Exception e) {
            d.giveBack(latents);
            throw rethrow(e);
        }
        Timings timings = new Timings(d.textNanos(), d.stepNanos(), System.nanoTime() - t1);
        if (LOG.isDebugEnabled()) {
            LOG.debug(String.format(java.util.Locale.ROOT, "%d image(s) %dx%d, %d steps: text %.2f s, denoise %.2f s, decode %.2f s", s.images(),
                    s.width(), s.height(), d.stepNanos().length, timings.textEncode() / 1e9, timings.denoise() / 1e9, timings.decode() / 1e9));
        }
        return new GenerationResult(decoded, latents, timings, s, d.warnings());
    }

    @Override
    public boolean runsInOneBatch(GenerationSettings s) {
        return s.option(GivenDraws.class) != null || prepared.memory(s, false).chunks() == 1;
    }

    @Override
    public synchronized Denoised denoise(GenerationSettings s, StepListener listener) {
        MemoryEstimate memory = checkBeforeWork(s);
        if (memory.chunks() != 1 && s.option(GivenDraws.class) == null) {
            throw new InvalidRequestException(s.images() + " images are more than one batch holds here (" + memory.chunkImages()
                    + "): generate() runs them in chunks; denoise/decode take one batch");
        }
        return files.load(() -> denoiseStage(impl, s, listener, null));
    }

    /** Not synchronised on the pipeline: a decode may overlap the next denoise ({@link DecodeOverlap}); decodes run one at a time. */
    @Override
    public GenerationResult decode(Denoised d) {
        return decodeStage(impl, d);
    }

    /** Finite latents can still decode to NaN (broken VAE weights, fp16 overflow): fail rather than save black images. */
    static void requireFinite(Tensor decoded) {
        if (decoded.is_meta()) return; // shapes only: nothing to check
        boolean finite;
        try (org.bytedeco.javacpp.PointerScope scope = new org.bytedeco.javacpp.PointerScope()) {
            finite = decoded.isfinite().all().item_bool();
        }
        if (!finite) {
            Native.release(decoded);
            throw new NonFiniteException(NonFiniteException.Stage.DECODE, -1,
                    "the decoded images contain NaN or infinity although the latents are finite: the VAE's weights are broken or overflow");
        }
    }

    /** A reference of its own to the cached delta of (pos, neg) (the plan releases it; the cache keeps its own). */
    synchronized Tensor delta(FamilyPipeline<?> f, String pos, String neg) {
        Tensor d = deltas.get(List.of(pos, neg));
        if (d == null) {
            d = f.delta(pos, neg);
            deltas.put(List.of(pos, neg), d);
        }
        return Native.keep(d);
    }

    private static RuntimeException rethrow(Exception e) {
        if (e instanceof RuntimeException r) return r;
        return new IllegalStateException(e.getMessage(), e); // AutoCloseable.close() declares Exception; ours throw none
    }

    @Override
    public void modulations(BlockConditioning cond, ModulationVisitor visitor) {
        impl.modulations(cond, visitor);
    }

    @Override
    public <T> T unwrap(Class<T> type) {
        if (!type.isInstance(impl)) throw new IllegalArgumentException("this pipeline is a " + impl.getClass().getSimpleName() + ", not a " + type.getSimpleName());
        return type.cast(impl);
    }

    @Override
    public synchronized void close() {
        deltas.values().forEach(Native::release);
        deltas.clear();
        adapters.forEach(LoraAdapter::close);
        impl.close();
    }
}
