package io.mmdit4j.vae.wan;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Native;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.TensorVector;

import static org.bytedeco.pytorch.global.torch.cat;
import static org.bytedeco.pytorch.global.torch.conv2d;
import static org.bytedeco.pytorch.global.torch.conv3d;
import static org.bytedeco.pytorch.global.torch.empty;
import static org.bytedeco.pytorch.global.torch.zeros;

/**
 * diffusers {@code WanCausalConv3d}: a Conv3d whose time axis is zero-padded by {@code 2·p_t} frames in front only (causal)
 * and H, W by {@code p} on both sides; with a cached context (the previous frames' last inputs) the context takes the
 * place of as many padding frames. Weights {@code prefix.weight [out, in, kt, kh, kw]}, {@code prefix.bias [out]}.
 *
 * <p>When a call produces one output frame from a window that starts with zero padding (every call of an image decode,
 * the first calls of a video), the zero frames contribute nothing: the same frame is computed from the real frames and
 * the matching kernel slices only (a Conv2d for one real frame), a third of the work of the padded Conv3d. The sums
 * then run over fewer terms, so results differ from the padded convolution by float rounding only. Only the encoder's
 * temporal downsampler strides in time (2, without padding); spatial strides are always 1.
 */
final class WanCausalConv3d implements AutoCloseable {
    final Tensor weight; // [out, in, kt, kh, kw]
    final Tensor bias;   // [out]
    private final TensorOptional biasOption;
    private final int padT;        // zero frames in front: 2·p_t
    private final long[] stride;
    private static final long[] DILATION3 = {1, 1, 1};
    private static final long[] DILATION2 = {1, 1};

    private WanCausalConv3d(Tensor weight, Tensor bias, int padT, int strideT) {
        this.weight = weight;
        this.bias = bias;
        this.biasOption = Native.keep(new TensorOptional(bias));
        this.padT = padT;
        this.stride = new long[] {strideT, 1, 1};
    }

    /** @param kt, k the temporal and spatial kernel sizes; padding {@code (kt/2, k/2, k/2)} keeps the size (as diffusers builds them) */
    static WanCausalConv3d load(StateDict sd, String p, long in, long out, int kt, int k, DType dtype) {
        Tensor w = sd.take(p + ".weight", dtype, out, in, kt, k, k);
        try {
            return new WanCausalConv3d(w, sd.take(p + ".bias", dtype, out), 2 * (kt / 2), 1);
        } catch (RuntimeException e) {
            Native.release(w);
            throw e;
        }
    }

    /** The temporal upsampler's {@code time_conv}: kernel (3, 1, 1), padding (1, 0, 0). */
    static WanCausalConv3d loadTime(StateDict sd, String p, long in, long out, DType dtype) {
        return timeConv(sd, p, in, out, 2, 1, dtype);
    }

    /**
     * The temporal downsampler's {@code time_conv}: kernel (3, 1, 1), stride (2, 1, 1), no padding (the encoder feeds it the
     * previous chunk's last frame in front instead).
     */
    static WanCausalConv3d loadDownTime(StateDict sd, String p, long dim, DType dtype) {
        return timeConv(sd, p, dim, dim, 0, 2, dtype);
    }

    /** A (3, 1, 1) convolution over frames with {@code pad} causal frames and temporal {@code stride}. */
    private static WanCausalConv3d timeConv(StateDict sd, String p, long in, long out, int pad, int stride, DType dtype) {
        Tensor w = sd.take(p + ".weight", dtype, out, in, 3, 1, 1);
        try {
            return new WanCausalConv3d(w, sd.take(p + ".bias", dtype, out), pad, stride);
        } catch (RuntimeException e) {
            Native.release(w);
            throw e;
        }
    }

    long outChannels() {
        return weight.size(0);
    }

    /** {@code [B, in, T, H, W]} with an optional cached context {@code [B, in, c, H, W]} → {@code [B, out, T', H, W]}. */
    Tensor forward(Tensor x, Tensor cache) {
        long kt = weight.size(2), ph = weight.size(3) / 2, pw = weight.size(4) / 2;
        boolean useCache = cache != null && padT > 0;
        long context = useCache ? cache.size(2) : 0;
        long zeros = padT - context;
        if (zeros < 0) throw new IllegalArgumentException("a cached context of " + context + " frames for a causal padding of " + padT);
        long frames = context + x.size(2);
        long outFrames = (zeros + frames - kt) / stride[0] + 1;
        if (x.is_meta()) {
            return empty(new long[] {x.size(0), weight.size(0), outFrames, x.size(3), x.size(4)}, x.options(), new MemoryFormatOptional());
        }
        return io.mmdit4j.runtime.Scopes.local(() -> { // the concatenated / padded copies and sliced kernels die here
            Tensor input = useCache ? cat(new TensorVector(cache, x), 2) : x;
            if (outFrames == 1 && zeros > 0) {
                long real = kt - zeros; // frames of the window that are not padding
                if (real == 1) {
                    return conv2d(input.select(2, 0), weight.select(2, kt - 1), biasOption, new long[] {1, 1}, new long[] {ph, pw}, DILATION2, 1)
                            .unsqueeze(2);
                }
                return conv3d(input, weight.narrow(2, zeros, real), biasOption, stride, new long[] {0, ph, pw}, DILATION3, 1);
            }
            Tensor padded = input;
            if (zeros > 0) {
                Tensor z = zeros(new long[] {x.size(0), x.size(1), zeros, x.size(3), x.size(4)}, x.options());
                padded = cat(new TensorVector(z, input), 2);
            }
            return conv3d(padded, weight, biasOption, stride, new long[] {0, ph, pw}, DILATION3, 1);
        });
    }

    @Override
    public void close() {
        Native.release(biasOption);
        Native.release(weight);
        Native.release(bias);
    }
}
