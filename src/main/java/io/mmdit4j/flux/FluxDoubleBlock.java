package io.mmdit4j.flux;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.nn.DualStreamBlock;
import io.mmdit4j.nn.Rope;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.pytorch.Tensor;

/** {@code FluxTransformerBlock}: a {@link DualStreamBlock} with the text tokens first and RoPE over the joint sequence. */
final class FluxDoubleBlock extends DualStreamBlock {
    private FluxDoubleBlock(StateDict sd, String p, FluxConfig c, DType dtype) {
        super(sd, p, c.innerDim(), c.numAttentionHeads(), c.mlpHidden(), true, dtype);
    }

    static FluxDoubleBlock load(StateDict sd, String p, FluxConfig c, DType dtype) {
        return new FluxDoubleBlock(sd, p, c, dtype);
    }

    /** {@link #forward} in its own scope: the temporaries die here, both outputs are owned by the caller. */
    Output forwardOwned(Tensor x, Tensor ctx, Tensor cond, Rope rope) {
        return owned(() -> forward(x, ctx, cond, rope));
    }

    /** @param cond SiLU of this block's conditioning vector [B, D]; the same vector drives both streams */
    Output forward(Tensor x, Tensor ctx, Tensor cond, Rope rope) {
        Output o = forward(x, ctx, cond, (xn, cn) -> attn.forward(xn, cn, rope));
        if (Tensors.dtype(o.text()) != DType.F16) return o;
        return new Output(o.image(), o.text().clamp(Fp16.MIN, Fp16.MAX));
    }
}
