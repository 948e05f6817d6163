package io.mmdit4j.hunyuan;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.nn.DualStreamBlock;
import io.mmdit4j.nn.Rope;
import io.mmdit4j.runtime.DType;
import org.bytedeco.pytorch.Tensor;

/**
 * {@code HunyuanVideoTransformerBlock}: a {@link DualStreamBlock} with the image tokens first in the joint attention,
 * RoPE on the image q/k only and the text padding mask.
 */
final class HunyuanVideoDualBlock extends DualStreamBlock {
    private HunyuanVideoDualBlock(StateDict sd, String p, HunyuanVideoConfig c, DType dtype) {
        super(sd, p, c.innerDim(), c.numAttentionHeads(), c.mlpHidden(), false, dtype);
    }

    static HunyuanVideoDualBlock load(StateDict sd, String p, HunyuanVideoConfig c, DType dtype) {
        return new HunyuanVideoDualBlock(sd, p, c, dtype);
    }

    /** {@link #forward} in its own scope: the temporaries die here, both outputs are owned by the caller. */
    Output forwardOwned(Tensor x, Tensor ctx, Tensor cond, Rope imageRope, Tensor mask) {
        return owned(() -> forward(x, ctx, cond, imageRope, mask));
    }

    /** @param cond SiLU of this block's conditioning [B, D]; @param mask [B,1,1,N+T] bool key mask (image first) */
    Output forward(Tensor x, Tensor ctx, Tensor cond, Rope imageRope, Tensor mask) {
        return forward(x, ctx, cond, (xn, cn) -> attn.forward(xn, cn, imageRope, mask));
    }
}
