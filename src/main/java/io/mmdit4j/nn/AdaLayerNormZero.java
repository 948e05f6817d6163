package io.mmdit4j.nn;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.runtime.DType;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

/**
 * adaLN-Zero of a double-stream block: {@code Linear(D -> 6D)(SiLU(cond))} chunked as shift_msa,
 * scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp. It takes the already activated conditioning
 * {@code SiLU(cond)}, which the guidance plan computes once per distinct vector.
 */
public final class AdaLayerNormZero implements AutoCloseable {
    final Linear linear;
    private final double eps;

    /** The six modulation vectors ([B, D] each) and the modulated input. */
    public record Output(Tensor normed, Tensor shiftMsa, Tensor scaleMsa, Tensor gateMsa,
                         Tensor shiftMlp, Tensor scaleMlp, Tensor gateMlp) {}

    public AdaLayerNormZero(Linear linear, double eps) {
        this.linear = linear;
        this.eps = eps;
    }

    public static AdaLayerNormZero load(StateDict sd, String prefix, long dim, DType dtype) {
        return new AdaLayerNormZero(Linear.load(sd, prefix + ".linear", dim, 6 * dim, dtype), 1e-6);
    }

    /** The six modulation vectors alone (statistics), 6 x [B, D] in the order of {@link Output}. */
    public TensorVector modulation(Tensor activatedCond) {
        return linear.forward(activatedCond).chunk(6, 1);
    }

    public Output forward(Tensor x, Tensor activatedCond) { // x [B,S,D], activatedCond [B,D]
        TensorVector c = linear.forward(activatedCond).chunk(6, 1); // 6 x [B, D]
        Tensor normed = Ops.layerNormModulate(x, eps, c.get(0), c.get(1));
        return new Output(normed, c.get(0), c.get(1), c.get(2), c.get(3), c.get(4), c.get(5));
    }

    @Override
    public void close() {
        linear.close();
    }
}
