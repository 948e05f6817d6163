package io.mmdit4j.nn;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.runtime.DType;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

/**
 * The final norm ({@code norm_out}): {@code Linear(D -> 2D)(SiLU(cond))} chunked as <b>scale, shift</b>
 * (diffusers order; original checkpoints store shift, scale and are swapped at load time).
 */
public final class AdaLayerNormContinuous implements AutoCloseable {
    final Linear linear;
    private final double eps;

    public AdaLayerNormContinuous(Linear linear, double eps) {
        this.linear = linear;
        this.eps = eps;
    }

    public static AdaLayerNormContinuous load(StateDict sd, String prefix, long dim, DType dtype) {
        return new AdaLayerNormContinuous(Linear.load(sd, prefix + ".linear", dim, 2 * dim, dtype), 1e-6);
    }

    public Tensor forward(Tensor x, Tensor activatedCond) { // x [B,S,D], activatedCond = SiLU(cond) [B,D]
        TensorVector c = linear.forward(activatedCond.to(x.scalar_type())).chunk(2, 1);
        return Ops.layerNormModulate(x, eps, c.get(1), c.get(0));
    }

    @Override
    public void close() {
        linear.close();
    }
}
