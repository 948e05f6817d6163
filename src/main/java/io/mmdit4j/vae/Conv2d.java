package io.mmdit4j.vae;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.runtime.DType;
import org.bytedeco.pytorch.Tensor;

import static org.bytedeco.pytorch.global.torch.conv2d;

/** {@code nn.Conv2d(in, out, k, stride, padding)} with bias, weight {@code [out, in, k, k]} as checkpoints store it. */
public final class Conv2d extends Conv {
    private final long[] stride;
    private final long[] padding;
    private static final long[] DILATION = {1, 1};

    public Conv2d(Tensor weight, Tensor bias, int stride, int padding) {
        super(weight, bias);
        this.stride = new long[] {stride, stride};
        this.padding = new long[] {padding, padding};
    }

    /** Loads {@code prefix.weight [out, in, k, k]} and {@code prefix.bias [out]}. */
    public static Conv2d load(StateDict sd, String prefix, long in, long out, int kernel, int stride, int padding, DType dtype) {
        return Modules.weightAndBias(sd, prefix, dtype, (w, b) -> new Conv2d(w, b, stride, padding), out, in, kernel, kernel);
    }

    /** A stride-1 conv with padding {@code kernel / 2}, which keeps H and W (a {@link Conv.Loader}). */
    public static Conv2d same(StateDict sd, String prefix, long in, long out, int kernel, DType dtype) {
        return load(sd, prefix, in, out, kernel, 1, kernel / 2, dtype);
    }

    @Override
    public Tensor forward(Tensor x) { // [B, in, H, W] -> [B, out, H', W']
        io.mmdit4j.runtime.Placement.require("conv2d", x, weight);
        if (x.is_meta()) return io.mmdit4j.nn.Ops.metaConv(x, weight, stride, padding); // no meta kernel for conv2d
        return conv2d(x, weight, biasOption, stride, padding, DILATION, 1);
    }
}
