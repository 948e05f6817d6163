package io.mmdit4j.nn;

import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.OpCounter;
import io.mmdit4j.runtime.Torch;
import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;

import static org.bytedeco.pytorch.global.torch.empty;
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

    /** {@code softmax(QKᵀ/√Dh)V} without a mask, on the backend chosen for the dtype (see {@link Torch}). */
    public static Tensor sdpa(Tensor q, Tensor k, Tensor v) { // [B,H,S,Dh] each
        if (OpCounter.recording()) {
            OpCounter.attention(q.size(0), q.size(1), q.size(2), k.size(2), q.size(3), DType.of(q.scalar_type()));
        }
        if (q.is_meta()) { // shapes only (dry runs): the math kernel has no meta implementation
            return empty(new long[] {q.size(0), q.size(1), q.size(2), v.size(3)}, q.options(), new MemoryFormatOptional());
        }
        if (q.is_cpu()) Torch.selectAttentionBackend(DType.of(q.scalar_type())); // CUDA keeps libtorch's own choice
        if (OpCounter.timing()) {
            long t0 = System.nanoTime();
            Tensor out = scaled_dot_product_attention(q, k, v);
            OpCounter.attentionNanos(System.nanoTime() - t0);
            return out;
        }
        return scaled_dot_product_attention(q, k, v);
    }

    /**
     * {@code softmax(QKᵀ/√Dh + mask)V} with a boolean mask broadcastable to {@code [B, H, Sq, Sk]} (true = attend),
     * as {@code F.scaled_dot_product_attention(q, k, v, attn_mask=mask)}; a null mask is {@link #sdpa(Tensor, Tensor, Tensor)}.
     */
    public static Tensor sdpa(Tensor q, Tensor k, Tensor v, Tensor mask) {
        if (mask == null) return sdpa(q, k, v);
        if (OpCounter.recording()) {
            OpCounter.attention(q.size(0), q.size(1), q.size(2), k.size(2), q.size(3), DType.of(q.scalar_type()));
        }
        if (q.is_meta()) {
            return empty(new long[] {q.size(0), q.size(1), q.size(2), v.size(3)}, q.options(), new MemoryFormatOptional());
        }
        if (q.is_cpu()) Torch.selectAttentionBackend(DType.of(q.scalar_type()));
        return scaled_dot_product_attention(q, k, v, new TensorOptional(mask), 0.0, false, new DoubleOptional(), false);
    }
}
