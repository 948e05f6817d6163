package io.mmdit4j.research;

import io.mmdit4j.models.ModelRegistry;
import io.mmdit4j.runtime.DeviceSpec;

import java.nio.file.Path;

/** The bundled demo model (written under target/models on first use) for research tests, at a tiny size. */
final class DemoModel {
    private DemoModel() {}

    static final ModelRegistry REGISTRY = ModelRegistry.standard();

    static SweepSettings settings(int size, int steps) {
        return new SweepSettings("flux-tiny-demo", "flux", "float32", size, size, steps, 3.5, 16);
    }

    static PipelineSweepModel load(SweepSettings s) {
        return (PipelineSweepModel) Sweeps.loader(s, REGISTRY, DeviceSpec.CPU).get();
    }

    static Path folder() {
        return REGISTRY.resolve("flux-tiny-demo");
    }
}
