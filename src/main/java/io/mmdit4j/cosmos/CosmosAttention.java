package io.mmdit4j.cosmos;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.nn.Attention;
import io.mmdit4j.nn.Linear;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.nn.RmsNorm;
import io.mmdit4j.nn.Rope;
import io.mmdit4j.runtime.DType;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * diffusers {@code Attention} with {@code CosmosAttnProcessor2_0}: q from the tokens, k/v from the tokens (self-attention,
 * {@code attn1}) or the T5 states (cross-attention, {@code attn2}), per-head RMSNorm (eps 1e-5) on q and k, RoPE on q and k
 * for self-attention only, no mask, no biases, then {@code to_out.0}.
 */
final class CosmosAttention implements AutoCloseable {
    final Linear to_q, to_k, to_v, to_out;
    final RmsNorm norm_q, norm_k;
    private final long heads;

    private CosmosAttention(Linear q, Linear k, Linear v, Linear out, RmsNorm nq, RmsNorm nk, long heads) {
        this.to_q = q;
        this.to_k = k;
        this.to_v = v;
        this.to_out = out;
        this.norm_q = nq;
        this.norm_k = nk;
        this.heads = heads;
    }

    /** @param kvDim the width of the key/value input: D for self-attention, the T5 width for cross-attention */
    static CosmosAttention load(StateDict sd, String p, long dim, long kvDim, int heads, int headDim, DType dtype) {
        List<AutoCloseable> built = new ArrayList<>();
        try {
            Linear q = Modules.track(built, Linear.loadNoBias(sd, p + ".to_q", dim, dim, dtype));
            Linear k = Modules.track(built, Linear.loadNoBias(sd, p + ".to_k", kvDim, dim, dtype));
            Linear v = Modules.track(built, Linear.loadNoBias(sd, p + ".to_v", kvDim, dim, dtype));
            Linear out = Modules.track(built, Linear.loadNoBias(sd, p + ".to_out.0", dim, dim, dtype));
            RmsNorm nq = Modules.track(built, RmsNorm.load(sd, p + ".norm_q.weight", headDim, 1e-5, dtype));
            RmsNorm nk = Modules.track(built, RmsNorm.load(sd, p + ".norm_k.weight", headDim, 1e-5, dtype));
            return new CosmosAttention(q, k, v, out, nq, nk, heads);
        } catch (RuntimeException e) {
            Modules.closeAll(built);
            throw e;
        }
    }

    /**
     * @param x       [B, N, D] the (modulated) tokens
     * @param context [B, L, kvDim] for cross-attention, null for self-attention
     * @param rope    the 3-D RoPE table (self-attention), or null
     */
    Tensor forward(Tensor x, Tensor context, Rope rope) {
        Tensor kv = context == null ? x : context;
        Tensor attended = Attention.attend(
                () -> rotate(Attention.project(to_q, norm_q, x, heads), rope),
                () -> rotate(Attention.project(to_k, norm_k, kv, heads), rope),
                () -> Attention.project(to_v, null, kv, heads), null);
        return to_out.forward(attended);
    }

    private static Tensor rotate(Tensor x, Rope rope) {
        return rope == null ? x : rope.apply(x);
    }

    @Override
    public void close() {
        Modules.closeAll(to_q, to_k, to_v, to_out, norm_q, norm_k);
    }
}
