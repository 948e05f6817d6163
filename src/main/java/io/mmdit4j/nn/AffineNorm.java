package io.mmdit4j.nn;

import io.mmdit4j.runtime.Native;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;

/**
 * A normalisation with a learnable scale and shift per channel ({@code prefix.weight}, {@code prefix.bias}, [C] each),
 * which libtorch's norm kernels take as optional tensors: {@link LayerNorm} and the VAEs' GroupNorm.
 */
public abstract class AffineNorm implements AutoCloseable {
    protected final Tensor weight; // [C]
    protected final Tensor bias;   // [C]
    protected final TensorOptional weightOption;
    protected final TensorOptional biasOption;
    protected final double eps;

    protected AffineNorm(Tensor weight, Tensor bias, double eps) {
        this.weight = weight;
        this.bias = bias;
        this.eps = eps;
        this.weightOption = Native.keep(new TensorOptional(weight));
        this.biasOption = Native.keep(new TensorOptional(bias));
    }

    public abstract Tensor forward(Tensor x);

    @Override
    public void close() {
        Native.release(weightOption);
        Native.release(biasOption);
        Native.release(weight);
        Native.release(bias);
    }
}
