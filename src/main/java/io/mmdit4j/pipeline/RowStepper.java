package io.mmdit4j.pipeline;

import io.mmdit4j.guidance.GuidancePlan;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.image.PngImages;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.sampling.Denoiser;
import io.mmdit4j.sampling.NonFiniteException;
import io.mmdit4j.sampling.Sampler;
import io.mmdit4j.sampling.Schedule;
import io.mmdit4j.sampling.Timings;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

import java.awt.image.BufferedImage;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Set;

import static org.bytedeco.pytorch.global.torch.cat;

/**
 * Continuous batching on one loaded model ({@link Pipeline#rowStepper}): the images of many requests run as rows of one
 * transformer batch, each request at its own step of its own schedule. A request's rows are {@link #start started}
 * (text encoded through the prompt-embedding cache, guidance plan, seeded noise), {@link #step stepped} together with
 * whatever other requests share the forward ({@link #batchKey}: same size and text length; seeds, prompts, step
 * counts, option values such as the embedded guidance scale, and modulation-guidance plans may differ), and
 * {@link #finish finished} (decoded) when their last step is done, so requests join and leave a running batch at step
 * boundaries. Each request's images equal what {@link Pipeline#generate} makes of the same settings, up to the float
 * rounding of another batch size (see the README on batch rounding); a request stepped alone equals it bit for bit.
 *
 * <p>Every image is its own part of the forward: its one-image settings ({@link GenerationSettings#chunk}) with its
 * prompt's cached encoding, its own guidance plan (step windows resolved at its own step, {@link ModulationGuidance#stack}),
 * its timestep, and its sampler's update with its own sigmas. Families whose {@link FamilyPipeline#rowForward} is null
 * (e.g. a sampler with state across the batch) are not {@link #supported}: run their requests whole.
 *
 * <p>Calls take the pipeline's lock (they exclude {@link Pipeline#generate}); one thread (a server's scheduler) is meant to
 * own it. {@link Rows} left open when the stepper closes are released with it.
 */
public final class RowStepper implements AutoCloseable {
    /**
     * Options whose work the row forwards do not do (an init image or mask changes the noise and the schedule, scale-wise
     * sampling changes the latent size, recorded draws replace the sampler's): refused at {@link #start} instead of being
     * silently ignored. (CFG and FLUX's true CFG are the row forwards' own: a part brings its negative rows.)
     */
    static final Set<Class<? extends GenerationOption>> WHOLE_REQUEST_ONLY =
            Set.of(InitImage.class, InpaintMask.class, ScaleWise.class, GivenDraws.class, StepNoise.class);

    /** Distinct one-image encodings kept for reuse (prompt, negative prompt, text length) beyond those in use. */
    public static final int ENCODING_CACHE = 64;

    private final LoadedPipeline pipeline;
    private final FamilyPipeline<AutoCloseable> family;
    private final FamilyPipeline.RowForward<AutoCloseable> forward;
    private final PromptEmbeddingCache<AutoCloseable> cache = new PromptEmbeddingCache<>(ENCODING_CACHE);
    private final Set<Rows> open = Collections.newSetFromMap(new IdentityHashMap<>());
    private final Object decodeLock = new Object();
    private int decoding; // finishes between taking their latents and the end of their decode (guarded by the pipeline)
    private boolean closed;

    @SuppressWarnings("unchecked")
    RowStepper(LoadedPipeline pipeline, FamilyPipeline<?> family) {
        this.pipeline = pipeline;
        this.family = (FamilyPipeline<AutoCloseable>) family;
        this.forward = (FamilyPipeline.RowForward<AutoCloseable>) family.rowForward();
    }

    /** Whether requests of this model can share forwards at different steps; otherwise run them whole ({@link Pipeline#generate}). */
    public boolean supported() {
        return forward != null;
    }

    /** Requests whose keys are equal can be stepped in one forward (null when not {@link #supported}). */
    public Object batchKey(GenerationSettings s) {
        return forward == null ? null : List.of(forward.batchKey(s), s.normControl());
    }

    /** Encodings served from the prompt-embedding cache, and encodings made. */
    public long encodingCacheHits() {
        synchronized (pipeline) {
            return cache.hits();
        }
    }

    public long encodingCacheMisses() {
        synchronized (pipeline) {
            return cache.misses();
        }
    }

    /**
     * The rows of a request at step 0: everything checked as {@link Pipeline#generate} checks it, the prompts encoded (or
     * found in the cache), the guidance plan built and the seeded noise drawn, on the model's device.
     */
    public Rows start(GenerationSettings s) {
        Objects.requireNonNull(s, "settings");
        synchronized (pipeline) {
            requireOpen();
            if (forward == null) throw new UnsupportedOptionException("row stepping: not supported by the " + pipeline.family().name() + " family");
            pipeline.checkBeforeWork(s);
            for (var o : s.options().keySet()) {
                if (WHOLE_REQUEST_ONLY.contains(o)) {
                    throw new UnsupportedOptionException(GenerationOptions.describe(o) + ": not supported by row stepping; generate the request whole (Pipeline.generate)");
                }
            }
            Schedule schedule = family.schedule(s);
            long t0 = System.nanoTime();
            List<Part> parts = new ArrayList<>();
            try {
                for (int i = 0; i < s.images(); i++) parts.add(part(s, i, schedule));
            } catch (RuntimeException | Error e) {
                parts.forEach(Part::close);
                throw e;
            } finally {
                family.textEncodersDone(); // offloaded text encoders (--offload text) go once the request's text is encoded
            }
            Rows r = new Rows(s, batchKey(s), schedule, parts, System.nanoTime() - t0, pipeline.warnings(s));
            open.add(r);
            return r;
        }
    }

    private Part part(GenerationSettings s, int i, Schedule schedule) {
        Tensor noiseRow = null;
        Part p = new Part();
        try {
            if (s.initialNoise() != null) {
                try (PointerScope scope = new PointerScope()) {
                    noiseRow = Tensors.keep(s.initialNoise().narrow(0, i, 1));
                }
            }
            GenerationSettings one = s.chunk(i, i + 1, noiseRow);
            p.settings = one;
            p.lease = cache.acquire(family.encodingKey(one), () -> family.encode(one));
            p.plan = GuidancePlan.build(one.guidance(), 1, family.cfg(one), family.numGuidedBlocks(), one.normControl(), family.guideFinalNorm(),
                    (pos, neg) -> pipeline.delta(family, pos, neg));
            p.sampler = family.sampler(one, schedule);
            if (p.sampler.steps() != schedule.steps()) throw new IllegalStateException("the sampler has " + p.sampler.steps() + " steps, the schedule " + schedule.steps());
            Tensor x = family.noise(one);
            if (!x.is_meta() && !DeviceSpec.of(x).equals(family.device())) { // the update runs where the prediction is
                try (PointerScope scope = new PointerScope()) {
                    Tensor moved = Tensors.keep(x.to(family.device().torchDevice(), x.scalar_type()));
                    x.close();
                    x = moved;
                }
            }
            p.latents = x;
            p.flags.add(finite(x));
            return p;
        } catch (RuntimeException | Error e) {
            p.close();
            throw e;
        } finally {
            Native.release(noiseRow);
        }
    }

    /**
     * One denoising step of every request in {@code batch}, each at its own step, in one forward; then each image's update
     * with its own sampler and sigmas. The requests must be open, unfinished, without failure and share a {@link #batchKey}.
     * A request whose latents became NaN or infinite gets its {@link Rows#failure} (checked every
     * {@link Denoiser#CHECK_EVERY} steps and after its last, as {@link Denoiser} does) and must not be stepped again; the
     * others go on. An exception from the forward itself leaves every request's latents as they were.
     */
    public void step(List<Rows> batch) {
        synchronized (pipeline) {
            requireOpen();
            if (forward == null) throw new UnsupportedOptionException("row stepping: not supported by the " + pipeline.family().name() + " family");
            if (batch.isEmpty()) return;
            Object key = batch.get(0).key;
            List<FamilyPipeline.RowPart<AutoCloseable>> parts = new ArrayList<>();
            List<Part> owners = new ArrayList<>();
            List<Rows> owning = new ArrayList<>();
            Set<Rows> seen = Collections.newSetFromMap(new IdentityHashMap<>());
            for (Rows r : batch) {
                if (!seen.add(r)) throw new IllegalArgumentException("a request appears twice in one step");
                if (r.closed || !open.contains(r)) throw new IllegalStateException("these rows are closed or belong to another stepper");
                if (r.done()) throw new IllegalStateException("the request has finished its " + r.steps() + " steps");
                if (r.failure != null) throw new IllegalStateException("the request failed: " + r.failure.getMessage());
                if (!key.equals(r.key)) throw new IllegalArgumentException("requests of batch keys " + key + " and " + r.key + " cannot share a forward");
                for (Part p : r.parts) {
                    parts.add(new FamilyPipeline.RowPart<>(p.settings, p.lease.get(), r.schedule, p.plan, r.step, p.latents));
                    owners.add(p);
                    owning.add(r);
                }
            }
            long t0 = System.nanoTime();
            List<Tensor> predictions = forward.at(parts);
            try {
                if (predictions.size() != parts.size()) throw new IllegalStateException(predictions.size() + " predictions for " + parts.size() + " parts");
                List<Tensor> next = new ArrayList<>(parts.size());
                try {
                    for (int k = 0; k < parts.size(); k++) {
                        try (PointerScope scope = new PointerScope()) {
                            next.add(owners.get(k).sampler.step(predictions.get(k), owning.get(k).step, owners.get(k).latents));
                        }
                    }
                } catch (RuntimeException | Error e) {
                    next.forEach(Native::release);
                    throw e;
                }
                for (int k = 0; k < parts.size(); k++) {
                    Part p = owners.get(k);
                    p.latents.close();
                    p.latents = next.get(k);
                    p.flags.add(finite(p.latents));
                }
            } finally {
                predictions.forEach(Native::release);
            }
            long elapsed = System.nanoTime() - t0;
            for (Rows r : batch) {
                r.stepNanos[r.step] = elapsed;
                r.step++;
                if (r.step % Denoiser.CHECK_EVERY == 0 || r.done()) r.checkFinite();
            }
        }
    }

    /**
     * The result of a request that has done its last step: its images decoded together (as {@link Pipeline#generate}
     * decodes them), its latents, timings (a shared forward's time counts for each request in it), settings and warnings.
     * The rows are closed; the result is the caller's.
     */
    public GenerationResult finish(Rows r) {
        return finish(List.of(r)).get(0);
    }

    /**
     * The results of requests that finished at the same step boundary and share a {@link #batchKey}, their images decoded
     * in one batch (the VAE's fixed costs are shared; each image equals its own decode up to the float rounding of another
     * batch size). In order; every request's rows are closed; the results are the caller's.
     *
     * <p>Only taking the latents holds the pipeline's lock: the VAE decode holds the stepper's decode lock instead, so a
     * server may decode finished requests on a thread of its own while the remaining rows go on stepping (the transformer
     * and the VAE are separate modules; decodes do not overlap each other).
     */
    public List<GenerationResult> finish(List<Rows> done) {
        if (done.isEmpty()) return List.of();
        List<Tensor> latents = new ArrayList<>(done.size());
        List<long[]> stepNanos = new ArrayList<>(done.size());
        try {
            synchronized (pipeline) {
                requireOpen();
                Object key = done.get(0).key;
                for (Rows r : done) {
                    if (r.closed || !open.contains(r)) throw new IllegalStateException("these rows are closed or belong to another stepper");
                    if (r.failure != null) throw r.failure;
                    if (!r.done()) throw new IllegalStateException("the request is at step " + r.step + " of " + r.steps());
                    if (!key.equals(r.key)) throw new IllegalArgumentException("requests of batch keys " + key + " and " + r.key + " cannot be decoded together");
                }
                try (PointerScope scope = new PointerScope()) {
                    for (Rows r : done) {
                        latents.add(Tensors.keep(r.parts.size() == 1 ? r.parts.get(0).latents.clone()
                                : cat(new TensorVector(r.parts.stream().map(p -> p.latents).toArray(Tensor[]::new)), 0)));
                    }
                }
                for (Rows r : done) {
                    stepNanos.add(r.stepNanos.clone());
                    r.close();
                }
                decoding++;
            }
            try {
                synchronized (decodeLock) {
                    return decode(done, latents, stepNanos);
                }
            } finally {
                synchronized (pipeline) {
                    decoding--;
                    pipeline.notifyAll();
                }
            }
        } finally {
            latents.forEach(Native::release);
        }
    }

    /** The VAE decode of {@link #finish} (the latents are handed to the results; those left are released by the caller). */
    private List<GenerationResult> decode(List<Rows> done, List<Tensor> latents, List<long[]> stepNanos) {
        pipeline.requireUnchanged();
        long t0 = System.nanoTime();
        Tensor decoded;
        try (PointerScope scope = new PointerScope()) {
            Tensor all = latents.size() == 1 ? latents.get(0) : cat(new TensorVector(latents.toArray(Tensor[]::new)), 0);
            decoded = family.decode(all, done.get(0).settings); // owned
        }
        LoadedPipeline.requireFinite(decoded); // releases it when it throws
        List<Tensor> images = new ArrayList<>(done.size());
        try {
            if (done.size() == 1) {
                images.add(decoded);
            } else {
                try (PointerScope scope = new PointerScope()) {
                    long offset = 0;
                    for (Rows r : done) {
                        images.add(Tensors.keep(decoded.narrow(0, offset, r.images()).clone()));
                        offset += r.images();
                    }
                } finally {
                    decoded.close();
                }
            }
            long nanos = (System.nanoTime() - t0) / done.size(); // a shared decode's time split evenly
            List<GenerationResult> out = new ArrayList<>(done.size());
            for (int k = 0; k < done.size(); k++) {
                Rows r = done.get(k);
                out.add(new GenerationResult(images.get(k), latents.get(k), new Timings(r.textNanos, stepNanos.get(k), nanos), r.settings, r.warnings));
                images.set(k, null);
                latents.set(k, null);
            }
            return out;
        } finally {
            images.forEach(Native::release);
        }
    }

    /**
     * A rough preview of image {@code image} of {@code r} at its current step: the first three latent channels, each scaled
     * to [0, 1] (not a decode: cheap enough for every step). Null when the family has no spatial view of its latents.
     */
    public BufferedImage preview(Rows r, int image) {
        synchronized (pipeline) {
            if (r.closed) throw new IllegalStateException("these rows are closed");
            Part p = r.parts.get(image);
            try (PointerScope scope = new PointerScope()) {
                Tensor spatial = family.spatialLatents(p.latents, p.settings);
                if (spatial == null) return null;
                Tensor x = spatial.select(0, 0).to(org.bytedeco.pytorch.global.torch.ScalarType.Float).cpu(); // [C, h, w]
                spatial.close();
                Tensor rgb = x.narrow(0, 0, Math.min(3, x.size(0)));
                if (rgb.size(0) < 3) rgb = rgb.narrow(0, 0, 1).expand(new long[] {3, x.size(1), x.size(2)});
                Tensor flat = rgb.reshape(3, -1);
                Tensor lo = flat.amin(new long[] {1}, true).unsqueeze(2), hi = flat.amax(new long[] {1}, true).unsqueeze(2);
                Tensor scaled = rgb.sub(lo).div(hi.sub(lo).clamp_min(new Scalar(1e-6)));
                return PngImages.toRgb(scaled.contiguous());
            }
        }
    }

    private void requireOpen() {
        if (closed) throw new IllegalStateException("the row stepper is closed");
    }

    /** A 0-dim bool tensor: whether every value is finite (queued; read with the others); null on meta. */
    private static Tensor finite(Tensor x) {
        if (x.is_meta()) return null;
        try (PointerScope scope = new PointerScope()) {
            return Tensors.keep(x.isfinite().all());
        }
    }

    /** Releases the stepper's cached encodings and RoPE tables, and any rows still open. */
    @Override
    public void close() {
        synchronized (pipeline) {
            if (closed) return;
            while (decoding > 0) { // a decode on another thread finishes first
                try {
                    pipeline.wait();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    break;
                }
            }
            for (Rows r : new ArrayList<>(open)) r.close();
            closed = true;
            try {
                if (forward != null) forward.close();
            } finally {
                cache.close();
            }
        }
    }

    /** One image of a request in flight. */
    private static final class Part implements AutoCloseable {
        GenerationSettings settings;
        PromptEmbeddingCache.Lease<AutoCloseable> lease;
        ModulationGuidance plan;
        Sampler sampler;
        Tensor latents;
        final List<Tensor> flags = new ArrayList<>(); // unread finiteness flags, from step firstUnread on (-1: the noise)
        int firstUnread = -1;

        @Override
        public void close() {
            flags.forEach(Native::release);
            flags.clear();
            Native.release(latents);
            latents = null;
            if (plan != null) plan.close();
            plan = null;
            if (sampler != null) sampler.close(); // a multistep history, a noise stream
            sampler = null;
            if (lease != null) lease.close();
            lease = null;
        }
    }

    /**
     * A request in flight: its images at step {@link #step()} of {@link #steps()}. Close it to cancel (between steps: its
     * rows leave the batch and everything they hold is released); {@link #finish} closes it when done.
     */
    public final class Rows implements AutoCloseable {
        private final GenerationSettings settings;
        private final Object key;
        private final Schedule schedule;
        private final List<Part> parts;
        private final long textNanos;
        private final long[] stepNanos;
        private final List<String> warnings;
        private int step;
        private RuntimeException failure;
        private boolean closed;

        private Rows(GenerationSettings settings, Object key, Schedule schedule, List<Part> parts, long textNanos, List<String> warnings) {
            this.settings = settings;
            this.key = key;
            this.schedule = schedule;
            this.parts = parts;
            this.textNanos = textNanos;
            this.stepNanos = new long[schedule.steps()];
            this.warnings = List.copyOf(warnings);
        }

        public GenerationSettings settings() { return settings; }

        /** Images of the request (rows of the batch; twice as many transformer rows with classifier-free guidance). */
        public int images() { return parts.size(); }

        /** Steps done so far. */
        public int step() { return step; }

        public int steps() { return schedule.steps(); }

        public boolean done() { return step >= schedule.steps(); }

        /** The noise level reached (σ of the next step; the terminal sigma when done). */
        public float sigma() { return parts.get(0).sampler.sigma(step); }

        /** The stepper's batch key of this request. */
        public Object batchKey() { return key; }

        /** Why the request cannot go on (NaN latents), or null. */
        public RuntimeException failure() { return failure; }

        /** Text encoding (and plan and noise) time of {@link #start}. */
        public long textNanos() { return textNanos; }

        public boolean isClosed() { return closed; }

        private void checkFinite() {
            for (Part p : parts) {
                try {
                    for (int k = 0; k < p.flags.size(); k++) {
                        Tensor f = p.flags.get(k);
                        if (f == null || f.item_bool()) continue;
                        int bad = p.firstUnread + k;
                        failure = bad < 0
                                ? new NonFiniteException(NonFiniteException.Stage.INITIAL_LATENTS, -1, "the initial latents (the noise) contain NaN or infinity")
                                : new NonFiniteException(NonFiniteException.Stage.STEP, bad, String.format(Locale.ROOT,
                                "the latents became NaN or infinite at denoising step %d of %d (index %d, sigma %.4f -> %.4f): the model's weights "
                                        + "or the guidance overflow; no image would be meaningful", bad + 1, steps(), bad, p.sampler.sigma(bad),
                                p.sampler.sigma(bad + 1)));
                        return;
                    }
                } finally {
                    p.flags.forEach(Native::release);
                    p.flags.clear();
                    p.firstUnread = step;
                }
            }
        }

        /** Releases everything the request holds (cancels it when it is not finished). */
        @Override
        public void close() {
            synchronized (pipeline) {
                if (closed) return;
                closed = true;
                open.remove(this);
                parts.forEach(Part::close);
            }
        }
    }
}
