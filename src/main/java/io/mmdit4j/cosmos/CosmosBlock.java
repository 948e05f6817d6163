package io.mmdit4j.cosmos;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.nn.FeedForward;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.nn.Ops;
import io.mmdit4j.nn.Rope;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Scopes;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

import java.util.ArrayList;
import java.util.List;

/**
 * {@code CosmosTransformerBlock}: self-attention with RoPE, cross-attention on the T5 states (no mask), and an exact-GELU
 * MLP, each behind its own adaLN-LoRA modulation ({@code norm1..3}) and gated residual; every modulation adds the
 * conditioning vector this block receives ({@code temb}, or {@code temb + scales[i]·pooled} with the pooled-CLIP adapter).
 */
final class CosmosBlock implements AutoCloseable {
    final CosmosAdaLayerNorm norm1, norm2, norm3;
    final CosmosAttention attn1, attn2;
    final FeedForward ff;

    private CosmosBlock(CosmosAdaLayerNorm n1, CosmosAttention a1, CosmosAdaLayerNorm n2, CosmosAttention a2, CosmosAdaLayerNorm n3,
                        FeedForward ff) {
        this.norm1 = n1;
        this.attn1 = a1;
        this.norm2 = n2;
        this.attn2 = a2;
        this.norm3 = n3;
        this.ff = ff;
    }

    static CosmosBlock load(StateDict sd, String p, CosmosConfig c, DType dtype) {
        long dim = c.innerDim();
        List<AutoCloseable> built = new ArrayList<>();
        try {
            CosmosAdaLayerNorm n1 = Modules.track(built, CosmosAdaLayerNorm.load(sd, p + "norm1", dim, c.adalnLoraDim(), 3, dtype));
            CosmosAttention a1 = Modules.track(built, CosmosAttention.load(sd, p + "attn1", dim, dim, c.numAttentionHeads(), c.attentionHeadDim(), dtype));
            CosmosAdaLayerNorm n2 = Modules.track(built, CosmosAdaLayerNorm.load(sd, p + "norm2", dim, c.adalnLoraDim(), 3, dtype));
            CosmosAttention a2 = Modules.track(built, CosmosAttention.load(sd, p + "attn2", dim, c.textEmbedDim(), c.numAttentionHeads(),
                    c.attentionHeadDim(), dtype));
            CosmosAdaLayerNorm n3 = Modules.track(built, CosmosAdaLayerNorm.load(sd, p + "norm3", dim, c.adalnLoraDim(), 3, dtype));
            FeedForward f = Modules.track(built, FeedForward.loadExactNoBias(sd, p + "ff", dim, c.mlpHidden(), dtype));
            return new CosmosBlock(n1, a1, n2, a2, n3, f);
        } catch (RuntimeException e) {
            Modules.closeAll(built);
            throw e;
        }
    }

    /**
     * @param x                 [B, N, D] tokens (not consumed)
     * @param text              [B, L, text_embed_dim] T5 states
     * @param activatedTimestep {@code SiLU(embedded_timestep)} [B, D]
     * @param temb              this block's conditioning [B, 3D]
     * @return the block's output [B, N, D], owned by the caller; each sub-layer's temporaries die inside it
     */
    Tensor forwardOwned(Tensor x, Tensor text, Tensor activatedTimestep, Tensor temb, Rope rope) {
        Tensor h1 = Scopes.owned(() -> {
            TensorVector m = norm1.modulation(activatedTimestep, temb);
            Tensor a = attn1.forward(CosmosAdaLayerNorm.modulate(x, m.get(0), m.get(1)), null, rope);
            return Ops.gatedResidual(x, m.get(2), a);
        });
        Tensor h2 = Scopes.then(h1, h -> Scopes.owned(() -> {
            TensorVector m = norm2.modulation(activatedTimestep, temb);
            Tensor a = attn2.forward(CosmosAdaLayerNorm.modulate(h, m.get(0), m.get(1)), text, null);
            return Ops.gatedResidual(h, m.get(2), a);
        }));
        return Scopes.then(h2, h -> Scopes.owned(() -> {
            TensorVector m = norm3.modulation(activatedTimestep, temb);
            Tensor f = ff.forward(CosmosAdaLayerNorm.modulate(h, m.get(0), m.get(1)));
            return Ops.gatedResidual(h, m.get(2), f);
        }));
    }

    @Override
    public void close() {
        Modules.closeAll(norm1, attn1, norm2, attn2, norm3, ff);
    }
}
