package io.mmdit4j.research;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.mmdit4j.flux.FluxPipeline;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.models.ModelDescriptor;
import io.mmdit4j.models.ModelRegistry;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Supplier;

/** Resolving a sweep spec against the model registry, and the model loader for its family. */
public final class Sweeps {
    private Sweeps() {}

    /** The spec's settings, with absent values from the model's descriptor (as {@code generate} does). */
    public static SweepSettings settings(SweepSpec spec, ModelRegistry registry) {
        ModelDescriptor d = registry.descriptor(spec.model());
        JsonNode defaults = d != null ? d.defaults() : new ObjectMapper().createObjectNode();
        String family = d != null ? d.family() : "flux";
        if (!family.equals("flux")) throw new IllegalArgumentException("sweep: model family '" + family + "' is not supported yet (FLUX only)");
        String dtype = DType.parse(spec.dtype()).torchName();
        return new SweepSettings(spec.model(), family, dtype,
                spec.width() != null ? spec.width() : defaults.path("width").asInt(1024),
                spec.height() != null ? spec.height() : defaults.path("height").asInt(1024),
                spec.steps() != null ? spec.steps() : defaults.path("steps").asInt(28),
                spec.guidanceScale() != null ? spec.guidanceScale() : defaults.path("guidance_scale").asDouble(3.5),
                spec.maxSequenceLength() != null ? spec.maxSequenceLength() : defaults.path("max_sequence_length").asInt(512));
    }

    /** Loads the sweep's model when called (a diffusers FLUX folder or a descriptor name). */
    public static Supplier<SweepModel> loader(SweepSettings s, ModelRegistry registry, DeviceSpec device) {
        return () -> {
            Path path = registry.resolve(s.model());
            if (!Files.isRegularFile(path.resolve("model_index.json"))) {
                throw new ModelFormatException(path + ": sweep needs a diffusers FLUX folder (model_index.json)");
            }
            return new FluxSweepModel(FluxPipeline.load(path, DType.parse(s.dtype()), device), s);
        };
    }
}
