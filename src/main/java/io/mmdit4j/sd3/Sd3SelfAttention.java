package io.mmdit4j.sd3;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.nn.Attention;
import io.mmdit4j.nn.Linear;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.nn.RmsNorm;
import io.mmdit4j.runtime.DType;
import org.bytedeco.pytorch.Tensor;

/**
 * The second attention of an SD3.5 Medium dual block ({@code attn2}, {@code AttnProcessor2_0}): self-attention over the
 * image tokens with optional RMS q/k norms, no RoPE, and an output projection {@code to_out.0}.
 */
final class Sd3SelfAttention implements AutoCloseable {
    final Linear to_q, to_k, to_v;
    final RmsNorm norm_q, norm_k; // null without qk_norm
    final Linear to_out_0;
    private final long heads;

    private Sd3SelfAttention(Linear to_q, Linear to_k, Linear to_v, RmsNorm norm_q, RmsNorm norm_k, Linear to_out_0, long heads) {
        this.to_q = to_q;
        this.to_k = to_k;
        this.to_v = to_v;
        this.norm_q = norm_q;
        this.norm_k = norm_k;
        this.to_out_0 = to_out_0;
        this.heads = heads;
    }

    static Sd3SelfAttention load(StateDict sd, String prefix, long dim, long heads, boolean qkNorm, DType dtype) {
        long headDim = dim / heads;
        return new Sd3SelfAttention(Linear.load(sd, prefix + ".to_q", dim, dim, dtype), Linear.load(sd, prefix + ".to_k", dim, dim, dtype),
                Linear.load(sd, prefix + ".to_v", dim, dim, dtype),
                qkNorm ? RmsNorm.load(sd, prefix + ".norm_q.weight", headDim, 1e-6, dtype) : null,
                qkNorm ? RmsNorm.load(sd, prefix + ".norm_k.weight", headDim, 1e-6, dtype) : null,
                Linear.load(sd, prefix + ".to_out.0", dim, dim, dtype), heads);
    }

    Tensor forward(Tensor x) { // [B,N,D] -> [B,N,D]
        Tensor q = Attention.splitHeads(to_q.forward(x), heads);                   // [B,H,N,Dh]
        Tensor k = Attention.splitHeads(to_k.forward(x), heads);
        Tensor v = Attention.splitHeads(to_v.forward(x), heads);
        if (norm_q != null) q = norm_q.forward(q);
        if (norm_k != null) k = norm_k.forward(k);
        return to_out_0.forward(Attention.mergeHeads(Attention.sdpa(q, k, v)).to(q.scalar_type()));
    }

    @Override
    public void close() {
        for (AutoCloseable c : new AutoCloseable[] {to_q, to_k, to_v, norm_q, norm_k, to_out_0}) Modules.closeQuietly(c);
    }
}
