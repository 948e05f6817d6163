package io.mmdit4j.pipeline;

import io.mmdit4j.models.Families;
import io.mmdit4j.models.ModelDescriptor;
import io.mmdit4j.models.ModelFamily;
import io.mmdit4j.models.ModelRegistry;

import java.nio.file.Path;

/**
 * The entry point: loads a model of any family by name or path, detecting its family (from the descriptor, the
 * diffusers {@code model_index.json}, or the checkpoint's tensor names).
 *
 * <pre>{@code
 * try (Pipeline p = Pipelines.load("flux-tiny-demo")) { ... }                                   // a bundled demo
 * try (Pipeline p = Pipelines.load("/models/FLUX.1-schnell", LoadOptions.builder().dtype(DType.BF16).build())) { ... }
 * }</pre>
 *
 * Names are model descriptors (bundled in the library: {@code flux1-schnell}, {@code flux1-dev}, {@code sd3.5-large},
 * {@code hunyuan-video}, the demos, ...); real checkpoints are looked up under {@code $MMDIT_MODELS}.
 */
public final class Pipelines {
    private Pipelines() {}

    public static Pipeline load(String nameOrPath) {
        return load(nameOrPath, LoadOptions.defaults());
    }

    public static Pipeline load(Path path, LoadOptions options) {
        return load(path.toString(), options);
    }

    public static Pipeline load(String nameOrPath, LoadOptions options) {
        return prepare(nameOrPath, options).load();
    }

    /**
     * Finds and recognises a model without loading it: requests can then be checked completely
     * ({@link PreparedModel#resolve}) before {@link PreparedModel#load} reads the weights.
     */
    public static PreparedModel prepare(String nameOrPath, LoadOptions options) {
        if (nameOrPath == null || nameOrPath.isBlank()) throw new UnknownModelException("no model given");
        LoadOptions o = options == null ? LoadOptions.defaults() : options;
        ModelRegistry registry = o.registryOrStandard();
        ModelDescriptor d = registry.descriptor(nameOrPath);
        Path path = registry.resolve(nameOrPath);
        ModelFamily family = Families.detect(d, path);
        GenerationDefaults defaults = family.defaults().withDescriptor(d, registry.modelsRoot());
        LoadOptions resolved = o.toBuilder().dtype(PreparedModel.dtype(o, defaults))
                .loras(o.loras() != null ? o.loras() : defaults.requireLoras()).build();
        return new PreparedModel(nameOrPath, d, path, family, defaults, resolved);
    }
}
