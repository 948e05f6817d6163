package io.mmdit4j.vae;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Native;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;

/**
 * A VAE convolution with bias: 2-D ({@link Conv2d}) or frame-causal 3-D (HunyuanVideo's {@code CausalConv3d}), weight
 * {@code [out, in, k, k(, k)]} as checkpoints store it. Like any op, its result belongs to the enclosing scope.
 */
public abstract class Conv implements AutoCloseable {
    protected final Tensor weight; // [out, in, k, k(, k)]
    protected final Tensor bias;   // [out]
    protected final TensorOptional biasOption;

    protected Conv(Tensor weight, Tensor bias) {
        this.weight = weight;
        this.bias = bias;
        this.biasOption = Native.keep(new TensorOptional(bias));
    }

    public abstract Tensor forward(Tensor x); // [B, in, ...] -> [B, out, ...]

    public long inChannels() { return weight.size(1); }
    public long outChannels() { return weight.size(0); }

    @Override
    public void close() {
        Native.release(biasOption);
        Native.release(weight);
        Native.release(bias);
    }

    /** Loads a stride-1 convolution whose padding keeps the spatial size ({@code kernel / 2}; causal in time for 3-D). */
    @FunctionalInterface
    public interface Loader {
        Conv load(StateDict sd, String prefix, long in, long out, int kernel, DType dtype);
    }
}
