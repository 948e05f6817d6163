package io.mmdit4j.research;

import io.mmdit4j.models.ModelRegistry;
import io.mmdit4j.pipeline.EmbeddedGuidance;
import io.mmdit4j.pipeline.GenerationDefaults;
import io.mmdit4j.pipeline.LoadOptions;
import io.mmdit4j.pipeline.Pipelines;
import io.mmdit4j.pipeline.PreparedModel;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;

import java.util.function.Supplier;

/** Resolving a sweep spec against the model registry, and the model loader. */
public final class Sweeps {
    private Sweeps() {}

    /** The spec's settings, with absent values from the model's defaults (as {@code generate} does). */
    public static SweepSettings settings(SweepSpec spec, ModelRegistry registry) {
        PreparedModel m = Pipelines.prepare(spec.model(), LoadOptions.builder().registry(registry).build());
        if (m.family().video()) throw new IllegalArgumentException("sweep: " + spec.model() + " is a video model; sweeps make images");
        GenerationDefaults d = m.defaults();
        EmbeddedGuidance g = d.option(EmbeddedGuidance.class);
        String dtype = DType.parse(spec.dtype()).torchName();
        return new SweepSettings(spec.model(), m.family().name(), dtype,
                spec.width() != null ? spec.width() : d.width(),
                spec.height() != null ? spec.height() : d.height(),
                spec.steps() != null ? spec.steps() : d.steps(),
                spec.guidanceScale() != null ? spec.guidanceScale() : g != null ? g.scale() : 3.5,
                spec.maxSequenceLength() != null ? spec.maxSequenceLength() : d.maxSequenceLength());
    }

    /** Loads the sweep's model when called (a diffusers folder or a model name, any image family). */
    public static Supplier<SweepModel> loader(SweepSettings s, ModelRegistry registry, DeviceSpec device) {
        return () -> new PipelineSweepModel(Pipelines.load(s.model(),
                LoadOptions.builder().registry(registry).dtype(DType.parse(s.dtype())).device(device).build()), s);
    }
}
