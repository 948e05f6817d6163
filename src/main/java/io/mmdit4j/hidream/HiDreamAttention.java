package io.mmdit4j.hidream;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.nn.Attention;
import io.mmdit4j.nn.Linear;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.nn.RmsNorm;
import io.mmdit4j.nn.Rope;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Scopes;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

import java.util.Arrays;
import java.util.function.Supplier;

import static org.bytedeco.pytorch.global.torch.cat;

/**
 * {@code HiDreamAttention} with {@code HiDreamAttnProcessor}: q and k RMS-normalised over the <b>whole width</b> (eps 1e-5,
 * weight [D]) before the head split; image keys multiplied by the padding mask (padding keys become 0, they are not masked
 * out); in a double block the image rows ({@code to_*}) come first, then the text rows ({@code to_*_t}); RoPE on the
 * whole sequence (only the first half of each head when the head is twice the RoPE width); plain softmax attention.
 */
final class HiDreamAttention implements AutoCloseable {
    private static final double EPS = 1e-5;

    final Linear to_q, to_k, to_v, to_out;
    final RmsNorm q_rms_norm, k_rms_norm;
    final Linear to_q_t, to_k_t, to_v_t, to_out_t;  // null in single blocks
    final RmsNorm q_rms_norm_t, k_rms_norm_t;       // null in single blocks
    private final long heads;

    private HiDreamAttention(Linear[] image, RmsNorm[] imageNorms, Linear[] text, RmsNorm[] textNorms, long heads) {
        to_q = image[0];
        to_k = image[1];
        to_v = image[2];
        to_out = image[3];
        q_rms_norm = imageNorms[0];
        k_rms_norm = imageNorms[1];
        to_q_t = text == null ? null : text[0];
        to_k_t = text == null ? null : text[1];
        to_v_t = text == null ? null : text[2];
        to_out_t = text == null ? null : text[3];
        q_rms_norm_t = textNorms == null ? null : textNorms[0];
        k_rms_norm_t = textNorms == null ? null : textNorms[1];
        this.heads = heads;
    }

    /** {@code prefix.{to_q,to_k,to_v,to_out,q_rms_norm,k_rms_norm}} and, unless {@code single}, the same with suffix {@code _t}. */
    static HiDreamAttention load(StateDict sd, String prefix, long dim, long heads, boolean single, DType dtype) {
        return new HiDreamAttention(linears(sd, prefix, "", dim, dtype), norms(sd, prefix, "", dim, dtype),
                single ? null : linears(sd, prefix, "_t", dim, dtype), single ? null : norms(sd, prefix, "_t", dim, dtype), heads);
    }

    private static Linear[] linears(StateDict sd, String prefix, String suffix, long dim, DType dtype) {
        return Arrays.stream(new String[] {"to_q", "to_k", "to_v", "to_out"})
                .map(n -> Linear.load(sd, prefix + "." + n + suffix, dim, dim, dtype)).toArray(Linear[]::new);
    }

    private static RmsNorm[] norms(StateDict sd, String prefix, String suffix, long dim, DType dtype) {
        return new RmsNorm[] {RmsNorm.load(sd, prefix + ".q_rms_norm" + suffix + ".weight", dim, EPS, dtype),
                RmsNorm.load(sd, prefix + ".k_rms_norm" + suffix + ".weight", dim, EPS, dtype)};
    }

    /**
     * The joint attention of a double block: image rows {@code x [B,S,D]} then text rows {@code ctx [B,T,D]}; returns the
     * projected outputs {image [B,S,D], text [B,T,D]} as temporaries of the caller's scope.
     *
     * @param keyMask [1 or B, S, 1] multiplying the image keys, or null
     */
    Tensor[] forward(Tensor x, Tensor ctx, Tensor keyMask, Rope rope) {
        long s = x.size(1), t = ctx.size(1);
        Tensor out = Attention.attend(
                () -> rotated(cat(new TensorVector(q_rms_norm.forward(to_q.forward(x)), q_rms_norm_t.forward(to_q_t.forward(ctx))), 1), rope),
                () -> rotated(cat(new TensorVector(masked(k_rms_norm.forward(to_k.forward(x)), keyMask),
                        k_rms_norm_t.forward(to_k_t.forward(ctx))), 1), rope),
                () -> Attention.splitHeads(cat(new TensorVector(to_v.forward(x), to_v_t.forward(ctx)), 1), heads), null);   // [B,S+T,D]
        return Scopes.localAll(() -> new Tensor[] {to_out.forward(out.narrow(1, 0, s)), to_out_t.forward(out.narrow(1, s, t))});
    }

    /** The self-attention of a single block over {@code h [B,S,D]} (keys times {@code keyMask [1 or B, S, 1]} when given). */
    Tensor forward(Tensor h, Tensor keyMask, Rope rope) {
        Supplier<Tensor> q = () -> rotated(q_rms_norm.forward(to_q.forward(h)), rope);
        Supplier<Tensor> k = () -> rotated(masked(k_rms_norm.forward(to_k.forward(h)), keyMask), rope);
        Supplier<Tensor> v = () -> Attention.splitHeads(to_v.forward(h), heads);
        Tensor out = Attention.attend(q, k, v, null);
        return Scopes.local(() -> to_out.forward(out));
    }

    private static Tensor masked(Tensor k, Tensor keyMask) {
        return keyMask == null ? k : k.mul(keyMask);
    }

    /** Heads split, then RoPE: the whole head, or its first half when the table is half as wide. */
    private Tensor rotated(Tensor y, Rope rope) { // [B,S,D] -> [B,H,S,Dh]
        Tensor heads4 = Attention.splitHeads(y, heads);
        long dh = heads4.size(3), width = rope.cos().size(1);
        if (width == dh) return rope.apply(heads4);
        Tensor first = rope.apply(heads4.narrow(3, 0, width));
        return cat(new TensorVector(first, heads4.narrow(3, width, dh - width)), 3);
    }

    @Override
    public void close() {
        Modules.closeAll(to_q, to_k, to_v, to_out, q_rms_norm, k_rms_norm, to_q_t, to_k_t, to_v_t, to_out_t, q_rms_norm_t, k_rms_norm_t);
    }
}
