package io.mmdit4j.bench;

import io.mmdit4j.flux.FluxConfig;
import io.mmdit4j.flux.FluxInputs;
import io.mmdit4j.flux.FluxTransformer;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;

/**
 * The two model sizes of the FLUX benchmarks: {@code tiny} (the demo-sized model, 16x16 latent, 16 text tokens) and
 * {@code unit}, the performance issue's work unit (D 3072, 24x128 heads, 1 double + 1 single block, 32x32 latent =
 * 256 image tokens, 128 text tokens).
 */
final class Sizes {
    private Sizes() {}

    static FluxConfig config(String size) {
        return size.equals("tiny")
                ? new FluxConfig(64, 64, 2, 3, 16, 2, 32, 24, false, new int[] {4, 6, 6}, 128)
                : new FluxConfig(64, 64, 1, 1, 128, 24, 4096, 768, false, new int[] {16, 56, 56}, 4 * 3072);
    }

    static FluxInputs inputs(String size, FluxConfig c) {
        return size.equals("tiny") ? FluxInputs.random(c, 1, 16, 16, 16, 0, 1.0, 3.5) : FluxInputs.random(c, 1, 32, 32, 128, 0, 1.0, 3.5);
    }

    /**
     * The benchmarks' modulation guidance: one term of scale 3 from block 1 on, along {@code TextMLP(pooled+) - TextMLP(pooled-)}
     * for pooled vectors of zeros and of 0.5s. Its temporaries belong to the caller's PointerScope.
     */
    static ModulationGuidance guidance(FluxTransformer model, FluxConfig c) {
        Tensor pos = Tensors.fromFloats(new float[c.pooledProjectionDim()], 1, c.pooledProjectionDim());
        Tensor neg = pos.add(new Scalar(0.5));
        return ModulationGuidance.builder().term(model.guidanceDelta(pos, neg), 3.0, LayerSchedule.from(1)).build();
    }
}
