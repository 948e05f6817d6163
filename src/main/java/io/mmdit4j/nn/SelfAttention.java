package io.mmdit4j.nn;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.runtime.DType;
import org.bytedeco.pytorch.Tensor;

/** Self-attention with RMS q/k norms and RoPE and no output projection (FLUX single blocks, {@code pre_only}). */
public final class SelfAttention implements AutoCloseable {
    final Linear to_q, to_k, to_v;
    final RmsNorm norm_q, norm_k;
    private final long heads;

    public SelfAttention(Linear to_q, Linear to_k, Linear to_v, RmsNorm norm_q, RmsNorm norm_k, long heads) {
        this.to_q = to_q;
        this.to_k = to_k;
        this.to_v = to_v;
        this.norm_q = norm_q;
        this.norm_k = norm_k;
        this.heads = heads;
    }

    public static SelfAttention loadFlux(StateDict sd, String prefix, long dim, long heads, DType dtype) {
        long headDim = dim / heads;
        return new SelfAttention(Linear.load(sd, prefix + ".to_q", dim, dim, dtype), Linear.load(sd, prefix + ".to_k", dim, dim, dtype),
                Linear.load(sd, prefix + ".to_v", dim, dim, dtype),
                RmsNorm.load(sd, prefix + ".norm_q.weight", headDim, 1e-6, dtype), RmsNorm.load(sd, prefix + ".norm_k.weight", headDim, 1e-6, dtype),
                heads);
    }

    public Tensor forward(Tensor x, Rope rope) { // [B,S,D] -> [B,S,D]
        return Attention.attend(
                () -> rotateLeading(Attention.project(to_q, norm_q, x, heads), rope),          // [B,H,S,Dh]
                () -> rotateLeading(Attention.project(to_k, norm_k, x, heads), rope),
                () -> Attention.project(to_v, null, x, heads), null);
    }

    /**
     * HunyuanVideo's single-stream attention: RoPE rotates only the first {@code rope.length()} tokens (the image
     * tokens, which come first), and an optional boolean key mask ({@code [B, 1, 1, S]}, true = attend) applies.
     */
    public Tensor forward(Tensor x, Rope leadingRope, Tensor mask) { // [B,S,D] -> [B,S,D]
        return Attention.attend(
                () -> rotateLeading(Attention.project(to_q, norm_q, x, heads), leadingRope),   // [B,H,S,Dh]
                () -> rotateLeading(Attention.project(to_k, norm_k, x, heads), leadingRope),
                () -> Attention.project(to_v, null, x, heads), mask);
    }

    /** RoPE on the first {@code rope.length()} tokens of {@code x} [B,H,S,Dh]; no rope: x itself. */
    private static Tensor rotateLeading(Tensor x, Rope rope) {
        if (rope == null) return x;
        long n = rope.length(), s = x.size(2);
        if (n == s) return rope.apply(x);
        return org.bytedeco.pytorch.global.torch.cat(new org.bytedeco.pytorch.TensorVector(rope.apply(x.narrow(2, 0, n)), x.narrow(2, n, s - n)), 2);
    }

    @Override
    public void close() {
        for (AutoCloseable c : new AutoCloseable[] {to_q, to_k, to_v, norm_q, norm_k}) Modules.closeQuietly(c);
    }
}
