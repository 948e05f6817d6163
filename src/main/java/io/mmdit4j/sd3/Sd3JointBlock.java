package io.mmdit4j.sd3;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.nn.AdaLayerNormContinuous;
import io.mmdit4j.nn.AdaLayerNormZero;
import io.mmdit4j.nn.AdaLayerNormZeroX;
import io.mmdit4j.nn.FeedForward;
import io.mmdit4j.nn.JointAttention;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.nn.Ops;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import java.util.Arrays;

/**
 * {@code JointTransformerBlock}: image and text streams with their own adaLN modulation and one joint attention (image
 * tokens first). Dual blocks (SD3.5 Medium) modulate the image input twice ({@code SD35AdaLayerNormZeroX}) and add a
 * second, image-only attention. The last block is {@code context_pre_only}: its text modulation is an
 * AdaLayerNormContinuous and its text output is dropped.
 */
final class Sd3JointBlock implements AutoCloseable {
    final AdaLayerNormZero norm1;                  // image modulation (6D), or null in dual blocks
    final AdaLayerNormZeroX norm1X;                // "norm1" of dual blocks (9D)
    final AdaLayerNormZero norm1_context;          // text modulation (6D), or null in the last block
    final AdaLayerNormContinuous norm1ContextLast; // "norm1_context" of the last block (2D: scale, shift)
    final JointAttention attn;
    final Sd3SelfAttention attn2;                  // dual blocks only
    final FeedForward ff;
    final FeedForward ff_context;                  // null in the last block

    /** Both streams after the block: image [B,N,D], text [B,T,D] (null after the last block). */
    record Output(Tensor image, Tensor text) {}

    private Sd3JointBlock(AdaLayerNormZero norm1, AdaLayerNormZeroX norm1X, AdaLayerNormZero norm1_context,
                          AdaLayerNormContinuous norm1ContextLast, JointAttention attn, Sd3SelfAttention attn2, FeedForward ff,
                          FeedForward ff_context) {
        this.norm1 = norm1;
        this.norm1X = norm1X;
        this.norm1_context = norm1_context;
        this.norm1ContextLast = norm1ContextLast;
        this.attn = attn;
        this.attn2 = attn2;
        this.ff = ff;
        this.ff_context = ff_context;
    }

    static Sd3JointBlock load(StateDict sd, String p, int index, Sd3Config c, DType dtype) {
        long dim = c.innerDim();
        boolean dual = c.isDual(index), last = c.isContextPreOnly(index);
        AutoCloseable[] parts = new AutoCloseable[8];
        try {
            parts[0] = dual ? null : AdaLayerNormZero.load(sd, p + "norm1", dim, dtype);
            parts[1] = dual ? AdaLayerNormZeroX.load(sd, p + "norm1", dim, dtype) : null;
            parts[2] = last ? null : AdaLayerNormZero.load(sd, p + "norm1_context", dim, dtype);
            parts[3] = last ? AdaLayerNormContinuous.load(sd, p + "norm1_context", dim, dtype) : null;
            parts[4] = JointAttention.loadSd3(sd, p + "attn", dim, c.numAttentionHeads(), c.qkNorm(), last, dtype);
            parts[5] = dual ? Sd3SelfAttention.load(sd, p + "attn2", dim, c.numAttentionHeads(), c.qkNorm(), dtype) : null;
            parts[6] = FeedForward.load(sd, p + "ff", dim, c.mlpHidden(), dtype);
            parts[7] = last ? null : FeedForward.load(sd, p + "ff_context", dim, c.mlpHidden(), dtype);
        } catch (RuntimeException e) {
            Modules.closeAll(Arrays.asList(parts));
            throw e;
        }
        return new Sd3JointBlock((AdaLayerNormZero) parts[0], (AdaLayerNormZeroX) parts[1], (AdaLayerNormZero) parts[2],
                (AdaLayerNormContinuous) parts[3], (JointAttention) parts[4], (Sd3SelfAttention) parts[5], (FeedForward) parts[6],
                (FeedForward) parts[7]);
    }

    /** @param cond SiLU of this block's conditioning vector [B, D]; the same vector drives both streams */
    /** {@link #forward} in its own scope: the temporaries die here, the outputs are owned by the caller. */
    Output forwardOwned(Tensor x, Tensor ctx, Tensor cond) {
        try (PointerScope scope = new PointerScope()) {
            Output o = forward(x, ctx, cond);
            return new Output(Tensors.keep(o.image()), o.text() == null ? null : Tensors.keep(o.text()));
        }
    }

    Output forward(Tensor x, Tensor ctx, Tensor cond) {
        Tensor normed, gateMsa, shiftMlp, scaleMlp, gateMlp, normed2 = null, gateMsa2 = null;
        if (norm1X != null) {
            AdaLayerNormZeroX.Output m = norm1X.forward(x, cond);
            normed = m.normed();
            gateMsa = m.gateMsa();
            shiftMlp = m.shiftMlp();
            scaleMlp = m.scaleMlp();
            gateMlp = m.gateMlp();
            normed2 = m.normed2();
            gateMsa2 = m.gateMsa2();
        } else {
            AdaLayerNormZero.Output m = norm1.forward(x, cond);
            normed = m.normed();
            gateMsa = m.gateMsa();
            shiftMlp = m.shiftMlp();
            scaleMlp = m.scaleMlp();
            gateMlp = m.gateMlp();
        }
        AdaLayerNormZero.Output cm = norm1_context != null ? norm1_context.forward(ctx, cond) : null;
        Tensor ctxNormed = cm != null ? cm.normed() : norm1ContextLast.forward(ctx, cond);
        JointAttention.Output a = attn.forward(normed, ctxNormed, null);

        x = Ops.gatedResidual(x, gateMsa, a.image());                                  // [B,N,D]
        if (attn2 != null) x = Ops.gatedResidual(x, gateMsa2, attn2.forward(normed2));
        Tensor xn = Ops.layerNormModulate(x, 1e-6, shiftMlp, scaleMlp);
        x = Ops.gatedResidual(x, gateMlp, ff.forward(xn));
        if (cm == null) return new Output(x, null);

        ctx = Ops.gatedResidual(ctx, cm.gateMsa(), a.text());                           // [B,T,D]
        Tensor cn = Ops.layerNormModulate(ctx, 1e-6, cm.shiftMlp(), cm.scaleMlp());
        ctx = Ops.gatedResidual(ctx, cm.gateMlp(), ff_context.forward(cn));
        return new Output(x, ctx);
    }

    @Override
    public void close() {
        Modules.closeAll(Arrays.asList(norm1, norm1X, norm1_context, norm1ContextLast, attn, attn2, ff, ff_context));
    }
}
