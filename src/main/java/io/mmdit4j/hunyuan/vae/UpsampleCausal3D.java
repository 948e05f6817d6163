package io.mmdit4j.hunyuan.vae;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Scopes;
import io.mmdit4j.vae.Block;
import io.mmdit4j.vae.Decoder;
import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

import static org.bytedeco.pytorch.global.torch.cat;
import static org.bytedeco.pytorch.global.torch.upsample_nearest2d;
import static org.bytedeco.pytorch.global.torch.upsample_nearest3d;

/**
 * diffusers {@code HunyuanVideoUpsampleCausal3D}: the first frame is up-sampled only spatially (nearest, ×2 in H and
 * W), the other frames by the block's full factor ({@code (2, 2, 2)} or {@code (1, 2, 2)}, nearest), concatenated
 * along time, then a 3×3×3 causal conv ({@code upsamplers.0.conv.conv.*}). So F frames become {@code 1 + 2(F−1)} with
 * time up-sampling: the causal first frame stays a single frame, as in the encoder's compression.
 */
record UpsampleCausal3D(CausalConv3d conv, int timeFactor, int spaceFactor) implements Block {
    private static final DoubleOptional NO_SCALE = Native.keep(new DoubleOptional());

    /** Up block {@code block}'s up-sampler as config {@code c} asks for it, or null where it asks for none (a {@link Decoder.UpsamplerLoader}). */
    static UpsampleCausal3D load(StateDict sd, String p, HunyuanVideoVaeConfig c, int block, long channels, DType dtype) {
        boolean space = c.upsamplesSpatially(block), time = c.upsamplesTemporally(block);
        if (!space && !time) return null;
        return new UpsampleCausal3D(CausalConv3d.load(sd, p + "conv", channels, channels, 3, dtype), time ? 2 : 1, space ? 2 : 1);
    }

    /** {@code [B, C, F, H, W] -> [B, C, 1 + t(F−1), sH, sW]}, owned by the caller. */
    @Override
    public Tensor forward(Tensor x) {
        Tensor up = Scopes.owned(() -> {
            long f = x.size(2), h = x.size(3) * spaceFactor, w = x.size(4) * spaceFactor;
            // integer factors: nearest from output sizes picks the same source pixels as from scale factors
            Tensor first = upsample_nearest2d(x.select(2, 0), new long[] {h, w}, NO_SCALE, NO_SCALE).unsqueeze(2); // [B, C, 1, sH, sW]
            if (f == 1) return first;
            Tensor rest = upsample_nearest3d(x.narrow(2, 1, f - 1).contiguous(), new long[] {timeFactor * (f - 1), h, w},
                    NO_SCALE, NO_SCALE, NO_SCALE);                                                                 // [B, C, t(F-1), sH, sW]
            return cat(new TensorVector(first, rest), 2);
        });
        return Scopes.then(up, t -> Scopes.owned(() -> conv.forward(t)));
    }

    @Override
    public void close() {
        conv.close();
    }
}
