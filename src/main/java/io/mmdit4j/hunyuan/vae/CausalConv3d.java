package io.mmdit4j.hunyuan.vae;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.vae.Conv;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;

import static org.bytedeco.pytorch.global.torch.conv3d;
import static org.bytedeco.pytorch.global.torch.empty;
import static org.bytedeco.pytorch.global.torch.replication_pad3d;

/**
 * diffusers {@code HunyuanVideoCausalConv3d}: {@code F.pad(x, (k//2, k//2, k//2, k//2, k-1, 0), mode="replicate")},
 * then {@code nn.Conv3d(in, out, k, stride, padding=0)}. The time axis is padded with k−1 copies of the first frame in
 * front only (frame t never sees frames after t); H and W are padded by k//2 on both sides, also by <em>replication</em>
 * (not zeros). Weights {@code prefix.conv.weight [out, in, k, k, k]} and {@code prefix.conv.bias [out]}. The encoder's
 * down-samplers ({@link DownsampleCausal3D}) use the same padding with a stride per axis (time, then H and W).
 */
public final class CausalConv3d extends Conv {
    private final long[] pad;    // (W left, W right, H top, H bottom, T front, T back)
    private final long[] stride;
    private static final long[] NO_PADDING = {0, 0, 0};
    private static final long[] DILATION = {1, 1, 1};

    CausalConv3d(Tensor weight, Tensor bias, int kernel, int stride) {
        this(weight, bias, kernel, stride, stride);
    }

    /** A causal conv with stride {@code timeStride} over the frames and {@code spaceStride} over H and W. */
    CausalConv3d(Tensor weight, Tensor bias, int kernel, int timeStride, int spaceStride) {
        super(weight, bias);
        this.pad = new long[] {kernel / 2, kernel / 2, kernel / 2, kernel / 2, kernel - 1, 0};
        this.stride = new long[] {timeStride, spaceStride, spaceStride};
    }

    /** Loads {@code prefix.conv.weight [out, in, k, k, k]} and {@code prefix.conv.bias [out]} (stride 1). */
    static CausalConv3d load(StateDict sd, String prefix, long in, long out, int kernel, DType dtype) {
        return Modules.weightAndBias(sd, prefix + ".conv", dtype, (w, b) -> new CausalConv3d(w, b, kernel, 1), out, in, kernel, kernel, kernel);
    }

    /**
     * {@code [B, in, F, H, W] -> [B, out, F', H', W']} ({@code F' = (F − 1)/s_t + 1}, {@code H' = (H − 1)/s + 1} for kernel 3;
     * the same size at stride 1); the result belongs to the enclosing scope.
     */
    @Override
    public Tensor forward(Tensor x) {
        if (x.is_meta()) return metaOutput(x);
        boolean padded = pad[4] > 0 || pad[0] > 0;
        Tensor input = padded ? replication_pad3d(x, pad) : x; // [B, in, F + k-1, H + 2(k//2), W + 2(k//2)]
        Tensor y = conv3d(input, weight, biasOption, stride, NO_PADDING, DILATION, 1);
        if (padded) input.close(); // the padded copy is as large as the activation: free it at once
        return y;
    }

    /** Shapes-only dry runs: libtorch has no meta kernel for convolution, so the output shape is computed here. */
    private Tensor metaOutput(Tensor x) {
        if (x.size(1) != weight.size(1)) {
            throw new IllegalArgumentException("conv input has " + x.size(1) + " channels, weight expects " + weight.size(1));
        }
        long k = weight.size(2);
        long[] shape = {x.size(0), weight.size(0),
                (x.size(2) + pad[4] + pad[5] - k) / stride[0] + 1,
                (x.size(3) + pad[2] + pad[3] - k) / stride[1] + 1,
                (x.size(4) + pad[0] + pad[1] - k) / stride[2] + 1};
        return empty(shape, x.options(), new MemoryFormatOptional());
    }
}
