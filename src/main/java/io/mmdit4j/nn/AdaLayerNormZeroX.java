package io.mmdit4j.nn;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.runtime.DType;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

/**
 * SD3.5 Medium's {@code SD35AdaLayerNormZeroX}: {@code Linear(D -> 9D)(SiLU(cond))} chunked as shift_msa, scale_msa,
 * gate_msa, shift_mlp, scale_mlp, gate_mlp, shift_msa2, scale_msa2, gate_msa2. Two modulated copies of the same
 * {@code LN(x)}: one for the joint attention, one for the block's second (image-only) attention.
 */
public final class AdaLayerNormZeroX implements AutoCloseable {
    final Linear linear;
    private final double eps;

    public record Output(Tensor normed, Tensor shiftMsa, Tensor scaleMsa, Tensor gateMsa, Tensor shiftMlp, Tensor scaleMlp,
                         Tensor gateMlp, Tensor normed2, Tensor gateMsa2) {}

    public AdaLayerNormZeroX(Linear linear, double eps) {
        this.linear = linear;
        this.eps = eps;
    }

    public static AdaLayerNormZeroX load(StateDict sd, String prefix, long dim, DType dtype) {
        return new AdaLayerNormZeroX(Linear.load(sd, prefix + ".linear", dim, 9 * dim, dtype), 1e-6);
    }

    public Output forward(Tensor x, Tensor activatedCond) { // x [B,S,D], activatedCond [B,D]
        TensorVector c = linear.forward(activatedCond).chunk(9, 1); // 9 x [B, D]
        Tensor ln = Ops.layerNorm(x, eps);
        Tensor normed = Ops.modulate(ln, c.get(0), c.get(1));
        Tensor normed2 = Ops.modulate(ln, c.get(6), c.get(7));
        return new Output(normed, c.get(0), c.get(1), c.get(2), c.get(3), c.get(4), c.get(5), normed2, c.get(8));
    }

    @Override
    public void close() {
        linear.close();
    }
}
