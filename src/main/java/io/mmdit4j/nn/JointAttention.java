package io.mmdit4j.nn;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Scopes;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

import static io.mmdit4j.nn.Modules.track;
import static org.bytedeco.pytorch.global.torch.cat;

/**
 * Joint (double-stream) attention: image and text streams with their own projections and q/k norms,
 * attended together in one sequence. FLUX puts the text first; SD3 and HunyuanVideo put the image first.
 * Optional RoPE on the whole joint sequence. Fields follow diffusers' {@code attn.*} keys.
 */
public final class JointAttention implements AutoCloseable {
    final Linear to_q, to_k, to_v;
    final Linear add_q_proj, add_k_proj, add_v_proj;
    final RmsNorm norm_q, norm_k, norm_added_q, norm_added_k;
    final Linear to_out_0;   // attn.to_out.0
    final Linear to_add_out; // null in blocks whose text stream ends (SD3 context_pre_only)
    private final long heads;
    private final boolean textFirst;

    /** Outputs of both streams after their output projections: image [B, N, D], text [B, T, D]. */
    public record Output(Tensor image, Tensor text) {}

    public JointAttention(Linear to_q, Linear to_k, Linear to_v, Linear add_q_proj, Linear add_k_proj, Linear add_v_proj,
                          RmsNorm norm_q, RmsNorm norm_k, RmsNorm norm_added_q, RmsNorm norm_added_k,
                          Linear to_out_0, Linear to_add_out, long heads, boolean textFirst) {
        this.to_q = to_q;
        this.to_k = to_k;
        this.to_v = to_v;
        this.add_q_proj = add_q_proj;
        this.add_k_proj = add_k_proj;
        this.add_v_proj = add_v_proj;
        this.norm_q = norm_q;
        this.norm_k = norm_k;
        this.norm_added_q = norm_added_q;
        this.norm_added_k = norm_added_k;
        this.to_out_0 = to_out_0;
        this.to_add_out = to_add_out;
        this.heads = heads;
        this.textFirst = textFirst;
    }

    /** Loads {@code prefix.{to_q,...}} with RMS q/k norms (eps 1e-6) and biases everywhere, text first, as FLUX has them. */
    public static JointAttention loadFlux(StateDict sd, String prefix, long dim, long heads, DType dtype) {
        return load(sd, prefix, dim, heads, true, true, true, dtype);
    }

    /**
     * Loads SD3's joint attention ({@code JointAttnProcessor2_0}): image first, biases everywhere, optional diffusers
     * RMS q/k norms (eps 1e-6, SD3.5) and no {@code to_add_out} in the {@code context_pre_only} last block.
     */
    public static JointAttention loadSd3(StateDict sd, String prefix, long dim, long heads, boolean qkNorm, boolean contextPreOnly,
                                         DType dtype) {
        return load(sd, prefix, dim, heads, qkNorm, !contextPreOnly, false, dtype);
    }

    /** As {@link #loadFlux} with the image tokens first in the joint sequence (HunyuanVideo's dual-stream blocks). */
    public static JointAttention loadImageFirst(StateDict sd, String prefix, long dim, long heads, DType dtype) {
        return load(sd, prefix, dim, heads, true, true, false, dtype);
    }

    private static JointAttention load(StateDict sd, String prefix, long dim, long heads, boolean qkNorm, boolean textOut,
                                       boolean textFirst, DType dtype) {
        long headDim = dim / heads;
        return Modules.loading(built -> new JointAttention(
                track(built, Linear.load(sd, prefix + ".to_q", dim, dim, dtype)), track(built, Linear.load(sd, prefix + ".to_k", dim, dim, dtype)),
                track(built, Linear.load(sd, prefix + ".to_v", dim, dim, dtype)),
                track(built, Linear.load(sd, prefix + ".add_q_proj", dim, dim, dtype)),
                track(built, Linear.load(sd, prefix + ".add_k_proj", dim, dim, dtype)),
                track(built, Linear.load(sd, prefix + ".add_v_proj", dim, dim, dtype)),
                qkNorm ? track(built, RmsNorm.load(sd, prefix + ".norm_q.weight", headDim, 1e-6, dtype)) : null,
                qkNorm ? track(built, RmsNorm.load(sd, prefix + ".norm_k.weight", headDim, 1e-6, dtype)) : null,
                qkNorm ? track(built, RmsNorm.load(sd, prefix + ".norm_added_q.weight", headDim, 1e-6, dtype)) : null,
                qkNorm ? track(built, RmsNorm.load(sd, prefix + ".norm_added_k.weight", headDim, 1e-6, dtype)) : null,
                track(built, Linear.load(sd, prefix + ".to_out.0", dim, dim, dtype)),
                textOut ? track(built, Linear.load(sd, prefix + ".to_add_out", dim, dim, dtype)) : null,
                heads, textFirst));
    }

    /**
     * HunyuanVideo's joint attention: RoPE rotates the image q/k only, before they join the text, and a boolean
     * key mask ({@code [B, 1, 1, N+T]} in joint order, true = attend) hides padded text tokens.
     */
    public Output forward(Tensor x, Tensor ctx, Rope imageRope, Tensor mask) { // x [B,N,D], ctx [B,T,D]
        return attend(x, ctx, imageRope, null, mask);
    }

    /** FLUX's and SD3's joint attention: RoPE (FLUX; null: none, SD3) over the whole joint sequence, no mask. */
    public Output forward(Tensor x, Tensor ctx, Rope rope) { // x [B,N,D], ctx [B,T,D]
        return attend(x, ctx, null, rope, null);
    }

    private Output attend(Tensor x, Tensor ctx, Rope imageRope, Rope jointRope, Tensor mask) {
        Tensor out = Attention.attend(                                                                           // [B,N+T,D]
                () -> jointHeads(to_q, norm_q, x, add_q_proj, norm_added_q, ctx, imageRope, jointRope),
                () -> jointHeads(to_k, norm_k, x, add_k_proj, norm_added_k, ctx, imageRope, jointRope),
                () -> jointHeads(to_v, null, x, add_v_proj, null, ctx, null, null), mask);
        return outputs(out, x.size(1), ctx.size(1));
    }

    /**
     * q, k or v over the joint sequence [B,H,N+T,Dh]: both streams projected (and q/k-normed), the image part rotated
     * by {@code imageRope} (HunyuanVideo), joined in this attention's order, then rotated by {@code jointRope}
     * (FLUX). The per-stream tensors die once joined.
     */
    private Tensor jointHeads(Linear imageProj, RmsNorm imageNorm, Tensor x, Linear textProj, RmsNorm textNorm, Tensor ctx,
                              Rope imageRope, Rope jointRope) {
        Tensor joined = Scopes.local(() -> joint(rotate(imageRope, Attention.project(imageProj, imageNorm, x, heads)),
                Attention.project(textProj, textNorm, ctx, heads)));
        return rotate(jointRope, joined);
    }

    /** Splits the joint attention output back into the streams and projects each: image [B,N,D], text [B,T,D]. */
    private Output outputs(Tensor out, long n, long t) {
        Tensor imageOut = textFirst ? out.narrow(1, t, n) : out.narrow(1, 0, n);
        Tensor textOut = textFirst ? out.narrow(1, 0, t) : out.narrow(1, n, t);
        return new Output(to_out_0.forward(imageOut), to_add_out == null ? null : to_add_out.forward(textOut));
    }

    private static Tensor rotate(Rope rope, Tensor x) {
        return rope == null ? x : rope.apply(x);
    }

    private Tensor joint(Tensor image, Tensor text) {
        return textFirst ? cat(new TensorVector(text, image), 2) : cat(new TensorVector(image, text), 2);
    }

    @Override
    public void close() {
        for (AutoCloseable c : new AutoCloseable[] {to_q, to_k, to_v, add_q_proj, add_k_proj, add_v_proj,
                norm_q, norm_k, norm_added_q, norm_added_k, to_out_0, to_add_out}) {
            Modules.closeQuietly(c);
        }
    }
}
