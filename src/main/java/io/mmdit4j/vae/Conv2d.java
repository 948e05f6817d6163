package io.mmdit4j.vae;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Native;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;

import static org.bytedeco.pytorch.global.torch.conv2d;

/** {@code nn.Conv2d(in, out, k, stride, padding)} with bias, weight {@code [out, in, k, k]} as checkpoints store it. */
public final class Conv2d implements Conv {
    final Tensor weight; // [out, in, k, k]
    final Tensor bias;   // [out]
    private final TensorOptional biasOption;
    private final long[] stride;
    private final long[] padding;
    private static final long[] DILATION = {1, 1};

    public Conv2d(Tensor weight, Tensor bias, int stride, int padding) {
        this.weight = weight;
        this.bias = bias;
        this.biasOption = Native.keep(new TensorOptional(bias));
        this.stride = new long[] {stride, stride};
        this.padding = new long[] {padding, padding};
    }

    /** Loads {@code prefix.weight [out, in, k, k]} and {@code prefix.bias [out]}. */
    public static Conv2d load(StateDict sd, String prefix, long in, long out, int kernel, int stride, int padding, DType dtype) {
        Tensor w = sd.take(prefix + ".weight", dtype, out, in, kernel, kernel);
        try {
            return new Conv2d(w, sd.take(prefix + ".bias", dtype, out), stride, padding);
        } catch (RuntimeException e) {
            Native.release(w);
            throw e;
        }
    }

    /** A stride-1 conv with padding {@code kernel / 2}, which keeps H and W (a {@link Conv.Loader}). */
    public static Conv2d same(StateDict sd, String prefix, long in, long out, int kernel, DType dtype) {
        return load(sd, prefix, in, out, kernel, 1, kernel / 2, dtype);
    }

    @Override
    public Tensor forward(Tensor x) { // [B, in, H, W] -> [B, out, H', W']
        return conv2d(x, weight, biasOption, stride, padding, DILATION, 1);
    }

    public long inChannels() { return weight.size(1); }
    public long outChannels() { return weight.size(0); }

    @Override
    public void close() {
        Native.release(biasOption);
        Native.release(weight);
        Native.release(bias);
    }
}
