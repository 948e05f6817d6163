package io.mmdit4j.nn;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Native;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;

import static org.bytedeco.pytorch.global.torch.layer_norm;

/** {@code nn.LayerNorm(dim, eps)} with a learnable scale and bias (the text encoders' norms). */
public final class LayerNorm implements AutoCloseable {
    final Tensor weight; // [dim]
    final Tensor bias;   // [dim]
    private final TensorOptional weightOption;
    private final TensorOptional biasOption;
    private final double eps;

    public LayerNorm(Tensor weight, Tensor bias, double eps) {
        this.weight = weight;
        this.bias = bias;
        this.eps = eps;
        this.weightOption = Native.keep(new TensorOptional(weight));
        this.biasOption = Native.keep(new TensorOptional(bias));
    }

    public static LayerNorm load(StateDict sd, String prefix, long dim, double eps, DType dtype) {
        return new LayerNorm(sd.take(prefix + ".weight", dtype, dim), sd.take(prefix + ".bias", dtype, dim), eps);
    }

    public Tensor forward(Tensor x) { // [..., dim]
        if (x.is_meta()) return x.clone(); // shapes only: libtorch has no meta kernel on this path
        return layer_norm(x, new long[] {x.size(-1)}, weightOption, biasOption, eps, false);
    }

    @Override
    public void close() {
        Native.release(weightOption);
        Native.release(biasOption);
        Native.release(weight);
        Native.release(bias);
    }
}
