package io.mmdit4j.flux;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.nn.AdaLayerNormZero;
import io.mmdit4j.nn.Linear;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.nn.Ops;
import io.mmdit4j.nn.Rope;
import io.mmdit4j.nn.SelfAttention;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Scopes;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.pytorch.Tensor;

import java.util.List;

import static org.bytedeco.pytorch.global.torch.gelu_;

/** {@code FluxSingleTransformerBlock}: one stream [text; image], attention and MLP in parallel. */
final class FluxSingleBlock implements AutoCloseable {
    final AdaLayerNormZero norm;
    final Linear proj_mlp;
    final SelfAttention attn;
    final Linear proj_out;

    private FluxSingleBlock(AdaLayerNormZero norm, Linear proj_mlp, SelfAttention attn, Linear proj_out) {
        this.norm = norm;
        this.proj_mlp = proj_mlp;
        this.attn = attn;
        this.proj_out = proj_out;
    }

    static FluxSingleBlock load(StateDict sd, String p, FluxConfig c, DType dtype) {
        long dim = c.innerDim();
        return new FluxSingleBlock(AdaLayerNormZero.loadSingle(sd, p + "norm", dim, dtype),
                Linear.load(sd, p + "proj_mlp", dim, c.mlpHidden(), dtype),
                SelfAttention.loadFlux(sd, p + "attn", dim, c.numAttentionHeads(), dtype),
                Linear.load(sd, p + "proj_out", dim + c.mlpHidden(), dim, dtype));
    }

    /** @param h [B, T+N, D] text then image tokens; @param cond SiLU of this block's conditioning [B, D] */
    Tensor forward(Tensor h, Tensor cond, Rope rope) {
        AdaLayerNormZero.Output m = norm.forward(h, cond);
        Tensor att = Scopes.local(() -> attn.forward(m.normed(), rope));                    // [B,S,D]
        Tensor projected = Scopes.local(() -> {
            Tensor mlp = gelu_(proj_mlp.forward(m.normed()), "tanh");                           // [B,S,mlp]
            return proj_out.forwardConcat(att, mlp);                                           // [B,S,D+mlp] -> [B,S,D]
        });
        Tensor out = Ops.gatedResidual(h, m.gateMsa(), projected);                                // [B,S,D]
        if (Tensors.dtype(out) == DType.F16) out = out.clamp(Fp16.MIN, Fp16.MAX);
        return out;
    }

    @Override
    public void close() {
        Modules.closeAll(List.of(norm, proj_mlp, attn, proj_out));
    }
}
