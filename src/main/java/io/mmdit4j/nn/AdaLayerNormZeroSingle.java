package io.mmdit4j.nn;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.runtime.DType;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

/** adaLN-Zero of a single-stream block: {@code Linear(D -> 3D)} chunked as shift, scale, gate. */
public final class AdaLayerNormZeroSingle implements AutoCloseable {
    final Linear linear;
    private final double eps;

    public record Output(Tensor normed, Tensor shift, Tensor scale, Tensor gate) {}

    public AdaLayerNormZeroSingle(Linear linear, double eps) {
        this.linear = linear;
        this.eps = eps;
    }

    public static AdaLayerNormZeroSingle load(StateDict sd, String prefix, long dim, DType dtype) {
        return new AdaLayerNormZeroSingle(Linear.load(sd, prefix + ".linear", dim, 3 * dim, dtype), 1e-6);
    }

    /** shift, scale and gate alone (statistics), 3 x [B, D]. */
    public TensorVector modulation(Tensor activatedCond) {
        return linear.forward(activatedCond).chunk(3, 1);
    }

    public Output forward(Tensor x, Tensor activatedCond) { // x [B,S,D], activatedCond [B,D]
        TensorVector c = linear.forward(activatedCond).chunk(3, 1);
        Tensor normed = Ops.layerNormModulate(x, eps, c.get(0), c.get(1));
        return new Output(normed, c.get(0), c.get(1), c.get(2));
    }

    @Override
    public void close() {
        linear.close();
    }
}
