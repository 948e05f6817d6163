package io.mmdit4j.nn;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.runtime.DType;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

import static io.mmdit4j.nn.Modules.track;
import static org.bytedeco.pytorch.global.torch.cat;

/**
 * Self-attention over one sequence ({@code attn.*}): q/k/v projections, optional RMS q/k norms, RoPE on the leading
 * tokens, an optional boolean key mask and an optional output projection {@code to_out.0}. FLUX's and HunyuanVideo's
 * single-stream blocks have the norms and RoPE but no output projection ({@code pre_only}: the block projects the
 * attention together with its MLP); SD3.5 Medium's second attention ({@code attn2}) and HunyuanVideo's token-refiner
 * attention are diffusers' same {@code Attention} module with {@code to_out.0}, without RoPE (and the refiner's without
 * norms).
 */
public final class SelfAttention implements AutoCloseable {
    final Linear to_q, to_k, to_v;
    final RmsNorm norm_q, norm_k; // null without q/k norms
    final Linear to_out_0;        // to_out.0, null in pre_only (single-stream) blocks
    private final long heads;

    public SelfAttention(Linear to_q, Linear to_k, Linear to_v, RmsNorm norm_q, RmsNorm norm_k, Linear to_out_0, long heads) {
        this.to_q = to_q;
        this.to_k = to_k;
        this.to_v = to_v;
        this.norm_q = norm_q;
        this.norm_k = norm_k;
        this.to_out_0 = to_out_0;
        this.heads = heads;
    }

    /** A single-stream block's attention (FLUX, HunyuanVideo): RMS q/k norms, no output projection. */
    public static SelfAttention loadFlux(StateDict sd, String prefix, long dim, long heads, DType dtype) {
        return load(sd, prefix, dim, heads, true, false, dtype);
    }

    /**
     * Loads {@code prefix.{to_q,to_k,to_v}} (with biases), with {@code qkNorm} the per-head RMS norms
     * {@code prefix.{norm_q,norm_k}} (eps 1e-6), and with {@code outProjection} {@code prefix.to_out.0}.
     */
    public static SelfAttention load(StateDict sd, String prefix, long dim, long heads, boolean qkNorm, boolean outProjection,
                                     DType dtype) {
        long headDim = dim / heads;
        return Modules.loading(built -> new SelfAttention(track(built, Linear.load(sd, prefix + ".to_q", dim, dim, dtype)),
                track(built, Linear.load(sd, prefix + ".to_k", dim, dim, dtype)), track(built, Linear.load(sd, prefix + ".to_v", dim, dim, dtype)),
                qkNorm ? track(built, RmsNorm.load(sd, prefix + ".norm_q.weight", headDim, 1e-6, dtype)) : null,
                qkNorm ? track(built, RmsNorm.load(sd, prefix + ".norm_k.weight", headDim, 1e-6, dtype)) : null,
                outProjection ? track(built, Linear.load(sd, prefix + ".to_out.0", dim, dim, dtype)) : null, heads));
    }

    /** Unmasked, RoPE (null: none) on the first {@code rope.length()} tokens (FLUX: all of them). [B,S,D] -> [B,S,D] */
    public Tensor forward(Tensor x, Rope rope) {
        return forward(x, rope, null);
    }

    /**
     * RoPE rotates only the first {@code rope.length()} tokens (HunyuanVideo's image tokens, which come first; null: no
     * RoPE), and an optional boolean mask broadcastable to {@code [B, H, S, S]} (true = attend) applies.
     */
    public Tensor forward(Tensor x, Rope leadingRope, Tensor mask) { // [B,S,D] -> [B,S,D]
        Tensor out = Attention.attend(
                () -> rotateLeading(Attention.project(to_q, norm_q, x, heads), leadingRope),   // [B,H,S,Dh]
                () -> rotateLeading(Attention.project(to_k, norm_k, x, heads), leadingRope),
                () -> Attention.project(to_v, null, x, heads), mask);
        return to_out_0 == null ? out : to_out_0.forward(out);
    }

    /** RoPE on the first {@code rope.length()} tokens of {@code x} [B,H,S,Dh]; no rope: x itself. */
    private static Tensor rotateLeading(Tensor x, Rope rope) {
        if (rope == null) return x;
        long n = rope.length(), s = x.size(2);
        if (n == s) return rope.apply(x);
        return cat(new TensorVector(rope.apply(x.narrow(2, 0, n)), x.narrow(2, n, s - n)), 2);
    }

    @Override
    public void close() {
        for (AutoCloseable c : new AutoCloseable[] {to_q, to_k, to_v, norm_q, norm_k, to_out_0}) Modules.closeQuietly(c);
    }
}
