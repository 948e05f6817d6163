package io.mmdit4j.nn;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.runtime.DType;
import org.bytedeco.pytorch.Tensor;

import static org.bytedeco.pytorch.global.torch.layer_norm;

/** {@code nn.LayerNorm(dim, eps)} with a learnable scale and bias (the text encoders' norms). */
public final class LayerNorm extends AffineNorm {
    public LayerNorm(Tensor weight, Tensor bias, double eps) {
        super(weight, bias, eps);
    }

    public static LayerNorm load(StateDict sd, String prefix, long dim, double eps, DType dtype) {
        return Modules.weightAndBias(sd, prefix, dtype, (w, b) -> new LayerNorm(w, b, eps), dim);
    }

    @Override
    public Tensor forward(Tensor x) { // [..., dim]
        io.mmdit4j.runtime.Placement.require("layer_norm", x);
        if (x.is_meta()) return x.clone(); // shapes only: libtorch has no meta kernel on this path
        return layer_norm(x, new long[] {x.size(-1)}, weightOption, biasOption, eps, false);
    }
}
