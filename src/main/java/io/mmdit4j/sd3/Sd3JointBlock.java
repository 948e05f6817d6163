package io.mmdit4j.sd3;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.nn.AdaLayerNormContinuous;
import io.mmdit4j.nn.AdaLayerNormZero;
import io.mmdit4j.nn.FeedForward;
import io.mmdit4j.nn.JointAttention;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.nn.Ops;
import io.mmdit4j.nn.SelfAttention;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static io.mmdit4j.nn.Modules.track;

/**
 * {@code JointTransformerBlock}: image and text streams with their own adaLN modulation and one joint attention (image
 * tokens first). Dual blocks (SD3.5 Medium) modulate the image input twice ({@code SD35AdaLayerNormZeroX}) and add a
 * second, image-only attention. The last block is {@code context_pre_only}: its text modulation is an
 * AdaLayerNormContinuous and its text output is dropped.
 */
final class Sd3JointBlock implements AutoCloseable {
    final AdaLayerNormZero norm1;                  // image modulation: 6 chunks, 9 in dual blocks (SD35AdaLayerNormZeroX)
    final AdaLayerNormZero norm1_context;          // text modulation (6 chunks), or null in the last block
    final AdaLayerNormContinuous norm1ContextLast; // "norm1_context" of the last block (2D: scale, shift)
    final JointAttention attn;
    final SelfAttention attn2;                     // dual blocks only
    final FeedForward ff;
    final FeedForward ff_context;                  // null in the last block

    /** Both streams after the block: image [B,N,D], text [B,T,D] (null after the last block). */
    record Output(Tensor image, Tensor text) {}

    private Sd3JointBlock(StateDict sd, String p, int index, Sd3Config c, DType dtype) {
        long dim = c.innerDim(), heads = c.numAttentionHeads();
        boolean dual = c.isDual(index), last = c.isContextPreOnly(index);
        List<AutoCloseable> built = new ArrayList<>();
        try {
            norm1 = track(built, dual ? AdaLayerNormZero.loadX(sd, p + "norm1", dim, dtype) : AdaLayerNormZero.load(sd, p + "norm1", dim, dtype));
            norm1_context = last ? null : track(built, AdaLayerNormZero.load(sd, p + "norm1_context", dim, dtype));
            norm1ContextLast = last ? track(built, AdaLayerNormContinuous.load(sd, p + "norm1_context", dim, dtype)) : null;
            attn = track(built, JointAttention.loadSd3(sd, p + "attn", dim, heads, c.qkNorm(), last, dtype));
            attn2 = dual ? track(built, SelfAttention.load(sd, p + "attn2", dim, heads, c.qkNorm(), true, dtype)) : null;
            ff = track(built, FeedForward.load(sd, p + "ff", dim, c.mlpHidden(), dtype));
            ff_context = last ? null : track(built, FeedForward.load(sd, p + "ff_context", dim, c.mlpHidden(), dtype));
        } catch (RuntimeException e) {
            Modules.closeAll(built);
            throw e;
        }
    }

    static Sd3JointBlock load(StateDict sd, String p, int index, Sd3Config c, DType dtype) {
        return new Sd3JointBlock(sd, p, index, c, dtype);
    }

    /** {@link #forward} in its own scope: the temporaries die here, the outputs are owned by the caller. */
    Output forwardOwned(Tensor x, Tensor ctx, Tensor cond) {
        try (PointerScope scope = new PointerScope()) {
            Output o = forward(x, ctx, cond);
            return new Output(Tensors.keep(o.image()), o.text() == null ? null : Tensors.keep(o.text()));
        }
    }

    /** @param cond SiLU of this block's conditioning vector [B, D]; the same vector drives both streams */
    Output forward(Tensor x, Tensor ctx, Tensor cond) {
        AdaLayerNormZero.Output m = norm1.forward(x, cond);
        AdaLayerNormZero.Output cm = norm1_context != null ? norm1_context.forward(ctx, cond) : null;
        Tensor ctxNormed = cm != null ? cm.normed() : norm1ContextLast.forward(ctx, cond);
        JointAttention.Output a = attn.forward(m.normed(), ctxNormed, null);

        x = Ops.gatedResidual(x, m.gateMsa(), a.image());                              // [B,N,D]
        if (attn2 != null) x = Ops.gatedResidual(x, m.gateMsa2(), attn2.forward(m.normed2(), null));
        Tensor xn = Ops.layerNormModulate(x, 1e-6, m.shiftMlp(), m.scaleMlp());
        x = Ops.gatedResidual(x, m.gateMlp(), ff.forward(xn));
        if (cm == null) return new Output(x, null);

        ctx = Ops.gatedResidual(ctx, cm.gateMsa(), a.text());                           // [B,T,D]
        Tensor cn = Ops.layerNormModulate(ctx, 1e-6, cm.shiftMlp(), cm.scaleMlp());
        ctx = Ops.gatedResidual(ctx, cm.gateMlp(), ff_context.forward(cn));
        return new Output(x, ctx);
    }

    @Override
    public void close() {
        Modules.closeAll(Arrays.asList(norm1, norm1_context, norm1ContextLast, attn, attn2, ff, ff_context));
    }
}
