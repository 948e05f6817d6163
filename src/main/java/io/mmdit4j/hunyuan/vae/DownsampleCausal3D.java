package io.mmdit4j.hunyuan.vae;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Scopes;
import io.mmdit4j.vae.Block;
import org.bytedeco.pytorch.Tensor;

/**
 * diffusers {@code HunyuanVideoDownsampleCausal3D} as the encoder builds it ({@code downsample_padding=0}): one 3×3×3
 * causal conv ({@link CausalConv3d}: replicate padding, k−1 copies of the first frame in front, none behind) with stride
 * 2 over the frames where the block compresses time and 2 over H and W where it compresses space, weights
 * {@code downsamplers.0.conv.conv.*}. So F frames become {@code (F − 1)/2 + 1} (the causal first frame stays one frame)
 * and H becomes {@code (H − 1)/2 + 1}.
 */
record DownsampleCausal3D(CausalConv3d conv) implements Block {

    /** Encoder down block {@code block}'s down-sampler as config {@code c} asks for it, or null where it asks for none. */
    static DownsampleCausal3D load(StateDict sd, String p, HunyuanVideoVaeConfig c, int block, long channels, DType dtype) {
        boolean space = c.downsamplesSpatially(block), time = c.downsamplesTemporally(block);
        if (!space && !time) return null;
        return new DownsampleCausal3D(Modules.weightAndBias(sd, p + "conv.conv", dtype,
                (w, b) -> new CausalConv3d(w, b, 3, time ? 2 : 1, space ? 2 : 1), channels, channels, 3, 3, 3));
    }

    /** {@code [B, C, F, H, W] -> [B, C, F', H', W']}, owned by the caller. */
    @Override
    public Tensor forward(Tensor x) {
        return Scopes.owned(() -> conv.forward(x));
    }

    @Override
    public void close() {
        conv.close();
    }
}
