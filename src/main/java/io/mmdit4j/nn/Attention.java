package io.mmdit4j.nn;

import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.OpCounter;
import io.mmdit4j.runtime.Scopes;
import io.mmdit4j.runtime.Torch;
import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;

import static org.bytedeco.pytorch.global.torch.empty;
import java.util.function.Supplier;

import static org.bytedeco.pytorch.global.torch.scaled_dot_product_attention;

/** Head layout and the attention kernel, as diffusers' attention processors use them. */
public final class Attention {
    private Attention() {}

    /** {@code [B, S, H·Dh] -> [B, H, S, Dh]}. */
    public static Tensor splitHeads(Tensor x, long heads) {
        long b = x.size(0), s = x.size(1), dh = x.size(2) / heads;
        return x.view(b, s, heads, dh).transpose(1, 2);
    }

    /** {@code [B, H, S, Dh] -> [B, S, H·Dh]} (head-major channels). */
    public static Tensor mergeHeads(Tensor x) {
        long b = x.size(0), h = x.size(1), s = x.size(2), dh = x.size(3);
        return x.transpose(1, 2).reshape(b, s, h * dh);
    }

    /**
     * One of q/k/v of one stream: {@code norm(splitHeads(proj(x)))} [B,H,S,Dh] ({@code norm} may be null); the
     * projection's output dies as soon as the norm has made its own.
     */
    public static Tensor project(Linear proj, RmsNorm norm, Tensor x, long heads) { // x [B,S,D]
        return Scopes.local(() -> {
            Tensor h = splitHeads(proj.forward(x), heads);
            return norm == null ? h : norm.forward(h);
        });
    }

    /**
     * {@code mergeHeads(sdpa(q, k, v, mask))} in q's dtype, [B,S,H·Dh], with q, k and v built one after another by
     * the suppliers ([B,H,S,Dh] each): each is made in its own scope, so its projection, norm and RoPE temporaries
     * die before the next one starts, and all three are freed as soon as the attention has run — before the
     * caller's output projection. This bounds an attention's peak to the three inputs plus one input's temporaries.
     */
    public static Tensor attend(Supplier<Tensor> q, Supplier<Tensor> k, Supplier<Tensor> v, Tensor mask) {
        Tensor tq = null, tk = null, tv = null;
        try {
            tq = Scopes.owned(q);
            tk = Scopes.owned(k);
            tv = Scopes.owned(v);
            Tensor fq = tq, fk = tk, fv = tv;
            return Scopes.local(() -> mergeHeads(sdpa(fq, fk, fv, mask)).to(fq.scalar_type()));
        } finally {
            Native.release(tq);
            Native.release(tk);
            Native.release(tv);
        }
    }

    /** {@code softmax(QKᵀ/√Dh)V} without a mask, on the backend chosen for the dtype (see {@link Torch}). */
    public static Tensor sdpa(Tensor q, Tensor k, Tensor v) { // [B,H,S,Dh] each
        return sdpa(q, k, v, null);
    }

    /**
     * {@code softmax(QKᵀ/√Dh + mask)V} with a boolean mask broadcastable to {@code [B, H, Sq, Sk]} (true = attend),
     * as {@code F.scaled_dot_product_attention(q, k, v, attn_mask=mask)}; a null mask is {@link #sdpa(Tensor, Tensor, Tensor)}.
     */
    public static Tensor sdpa(Tensor q, Tensor k, Tensor v, Tensor mask) {
        if (OpCounter.recording()) {
            OpCounter.attention(q.size(0), q.size(1), q.size(2), k.size(2), q.size(3), DType.of(q.scalar_type()));
        }
        io.mmdit4j.runtime.Placement.require("scaled_dot_product_attention", q, k, v, mask);
        if (q.is_meta()) { // shapes only (dry runs): the math kernel has no meta implementation
            return empty(new long[] {q.size(0), q.size(1), q.size(2), v.size(3)}, q.options(), new MemoryFormatOptional());
        }
        long t0 = OpCounter.timing() ? System.nanoTime() : 0;
        // the CPU's and CUDA's backend settings are kept apart (Torch.attention)
        Tensor out = Torch.attention(q, () -> mask == null ? scaled_dot_product_attention(q, k, v)
                : scaled_dot_product_attention(q, k, v, new TensorOptional(mask), 0.0, false, new DoubleOptional(), false));
        if (OpCounter.timing()) OpCounter.attentionNanos(System.nanoTime() - t0);
        return out;
    }
}
