package io.mmdit4j.flux;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.nn.AdaLayerNormZero;
import io.mmdit4j.nn.Ops;
import io.mmdit4j.nn.Rope;
import io.mmdit4j.nn.SingleStreamBlock;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Scopes;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.pytorch.Tensor;


/** {@code FluxSingleTransformerBlock}: one stream [text; image], attention and MLP in parallel. */
final class FluxSingleBlock extends SingleStreamBlock {
    private FluxSingleBlock(StateDict sd, String p, FluxConfig c, DType dtype) {
        super(sd, p, c.innerDim(), c.numAttentionHeads(), c.mlpHidden(), dtype);
    }

    static FluxSingleBlock load(StateDict sd, String p, FluxConfig c, DType dtype) {
        return new FluxSingleBlock(sd, p, c, dtype);
    }

    /** @param h [B, T+N, D] text then image tokens; @param cond SiLU of this block's conditioning [B, D] */
    Tensor forward(Tensor h, Tensor cond, Rope rope) {
        AdaLayerNormZero.Output m = norm.forward(h, cond);
        Tensor att = Scopes.local(() -> attn.forward(m.normed(), rope));                    // [B,S,D]
        Tensor projected = Scopes.local(() -> {
            Tensor mlp = Ops.gelu(proj_mlp.forward(m.normed()), "tanh");                           // [B,S,mlp]
            return proj_out.forwardConcat(att, mlp);                                           // [B,S,D+mlp] -> [B,S,D]
        });
        Tensor out = Ops.gatedResidual(h, m.gateMsa(), projected);                             // [B,S,D]
        if (Tensors.dtype(out) == DType.F16) out = out.clamp(Fp16.MIN, Fp16.MAX);
        return out;
    }
}
