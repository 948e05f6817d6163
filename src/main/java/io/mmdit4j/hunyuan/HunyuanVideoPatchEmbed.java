package io.mmdit4j.hunyuan;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.OpCounter;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;

import static org.bytedeco.pytorch.global.torch.conv3d;
import static org.bytedeco.pytorch.global.torch.empty;

/** {@code x_embedder}: Conv3d with kernel = stride = (patch_t, patch, patch), tokens in (t, h, w) row-major order. */
final class HunyuanVideoPatchEmbed implements AutoCloseable {
    private static final long[] NO_PADDING = {0, 0, 0};
    private static final long[] DILATION = {1, 1, 1};

    final Tensor proj_weight; // [D, C, pt, p, p]
    final Tensor proj_bias;   // [D]
    private final TensorOptional biasOption;
    private final long[] stride;

    private HunyuanVideoPatchEmbed(Tensor weight, Tensor bias) {
        this.proj_weight = weight;
        this.proj_bias = bias;
        this.biasOption = Native.keep(new TensorOptional(bias));
        this.stride = new long[] {weight.size(2), weight.size(3), weight.size(4)};
    }

    static HunyuanVideoPatchEmbed load(StateDict sd, String prefix, HunyuanVideoConfig c, DType dtype) {
        long d = c.innerDim();
        Tensor w = sd.take(prefix + ".proj.weight", dtype, d, c.inChannels(), c.patchSizeT(), c.patchSize(), c.patchSize());
        try {
            return new HunyuanVideoPatchEmbed(w, sd.take(prefix + ".proj.bias", dtype, d));
        } catch (RuntimeException e) {
            Native.release(w);
            throw e;
        }
    }

    Tensor forward(Tensor x) { // [B, C, F, H, W] -> [B, F'·H'·W', D]
        long b = x.size(0), f = x.size(2) / stride[0], h = x.size(3) / stride[1], w = x.size(4) / stride[2], d = proj_weight.size(0);
        if (OpCounter.recording()) {
            OpCounter.linear(b * f * h * w, proj_weight.numel() / d, d, DType.of(x.scalar_type()));
        }
        if (x.is_meta()) return empty(new long[] {b, f * h * w, d}, x.options(), new MemoryFormatOptional()); // no meta conv kernel
        return conv3d(x, proj_weight, biasOption, stride, NO_PADDING, DILATION, 1).flatten(2, -1).transpose(1, 2);
    }

    @Override
    public void close() {
        Native.release(biasOption);
        Native.release(proj_weight);
        Native.release(proj_bias);
    }
}
