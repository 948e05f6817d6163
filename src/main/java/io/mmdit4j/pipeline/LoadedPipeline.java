package io.mmdit4j.pipeline;

import io.mmdit4j.guidance.BlockConditioning;
import io.mmdit4j.guidance.ConditioningObserver;
import io.mmdit4j.guidance.GuidancePlan;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.guidance.ModulationVisitor;
import io.mmdit4j.lora.LoraAdapter;
import io.mmdit4j.lora.LoraReport;
import io.mmdit4j.lora.LoraSpec;
import io.mmdit4j.models.ModelDescriptor;
import io.mmdit4j.models.ModelFamily;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.sampling.Denoiser;
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

    private LoadedPipeline(PreparedModel prepared, FamilyPipeline<?> impl, List<LoraAdapter> adapters, List<LoraReport> reports) {
        this.prepared = prepared;
        this.impl = impl;
        this.adapters = adapters;
        this.reports = List.copyOf(reports);
    }

    static LoadedPipeline load(PreparedModel p) {
        FamilyPipeline<?> impl = p.family().load(p.path(), p.options());
        List<LoraAdapter> adapters = new ArrayList<>();
        List<LoraReport> reports = new ArrayList<>();
        try {
            for (LoraSpec l : p.options().loras()) {
                LoraAdapter a = LoraAdapter.read(l.file());
                adapters.add(a);
                reports.add(impl.applyLora(a, l.scale(), p.options().loraStrict()));
            }
            return new LoadedPipeline(p, impl, adapters, reports);
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
        GenerationSettings s = prepared.resolve(request, impl.supportedOptions(), impl.numGuidedBlocks());
        impl.validate(s);
        return s;
    }

    @Override
    public List<String> warnings(GenerationSettings s) {
        return GuidancePlan.warnings(s.guidance(), impl.numGuidedBlocks(), s.steps());
    }

    @Override
    public synchronized GenerationResult generate(GenerationSettings s, StepListener listener, ConditioningObserver observer) {
        if (!s.family().equals(family().name())) {
            throw new InvalidRequestException("settings of a " + s.family() + " model, but this pipeline is " + family().name());
        }
        return run(impl, s, listener, observer);
    }

    /** The skeleton: encode, guidance plan, schedule, noise, denoise, decode; everything released on any failure. */
    private <C extends AutoCloseable> GenerationResult run(FamilyPipeline<C> f, GenerationSettings s, StepListener listener,
                                                           ConditioningObserver observer) {
        for (var o : s.options().keySet()) {
            if (!f.supportedOptions().contains(o)) throw new UnsupportedOptionException(GenerationOptions.describe(o) + ": not supported by this model");
        }
        GuidancePlan.check(s.guidance(), s.images(), f.numGuidedBlocks());
        family().validate(s);
        f.validate(s);
        List<String> warnings = warnings(s);
        Schedule schedule = f.schedule(s); // a bad sigma list fails before any work
        long t0 = System.nanoTime();
        try (C cond = f.encode(s);
             ModulationGuidance plan = GuidancePlan.build(s.guidance(), s.images(), f.cfg(s), f.numGuidedBlocks(), s.normControl(),
                     f.guideFinalNorm(), (pos, neg) -> delta(f, pos, neg))) {
            long textNanos = System.nanoTime() - t0;
            long[] stepNanos = new long[schedule.steps()];
            Tensor latents;
            try (Tensor noise = f.noise(s); FamilyPipeline.Velocity v = f.velocity(s, schedule, cond, plan, observer)) {
                latents = Denoiser.run(f.sampler(s, schedule), noise, v, f.device(), listener, stepNanos);
            }
            long t1 = System.nanoTime();
            Tensor decoded;
            try {
                decoded = f.decode(latents, s);
            } catch (RuntimeException | Error e) {
                latents.close();
                throw e;
            }
            return new GenerationResult(decoded, latents, new Timings(textNanos, stepNanos, System.nanoTime() - t1), s, warnings);
        } catch (Exception e) {
            throw rethrow(e);
        }
    }

    /** A reference of its own to the cached delta of (pos, neg) (the plan releases it; the cache keeps its own). */
    private Tensor delta(FamilyPipeline<?> f, String pos, String neg) {
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
