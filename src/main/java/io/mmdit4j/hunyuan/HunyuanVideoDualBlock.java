package io.mmdit4j.hunyuan;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.nn.AdaLayerNormZero;
import io.mmdit4j.nn.FeedForward;
import io.mmdit4j.nn.JointAttention;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.nn.Ops;
import io.mmdit4j.nn.Rope;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * {@code HunyuanVideoTransformerBlock}: a FLUX double block with the image tokens first in the joint attention,
 * RoPE on the image q/k only, the text padding mask, and both attention residuals before both MLP residuals.
 */
final class HunyuanVideoDualBlock implements AutoCloseable {
    final AdaLayerNormZero norm1;         // image modulation
    final AdaLayerNormZero norm1_context; // text modulation
    final JointAttention attn;
    final FeedForward ff;
    final FeedForward ff_context;

    record Output(Tensor image, Tensor text) {}

    private HunyuanVideoDualBlock(AdaLayerNormZero norm1, AdaLayerNormZero norm1_context, JointAttention attn, FeedForward ff, FeedForward ffContext) {
        this.norm1 = norm1;
        this.norm1_context = norm1_context;
        this.attn = attn;
        this.ff = ff;
        this.ff_context = ffContext;
    }

    static HunyuanVideoDualBlock load(StateDict sd, String p, HunyuanVideoConfig c, DType dtype) {
        long dim = c.innerDim();
        List<AutoCloseable> built = new ArrayList<>();
        try {
            AdaLayerNormZero n1 = add(built, AdaLayerNormZero.load(sd, p + "norm1", dim, dtype));
            AdaLayerNormZero n1c = add(built, AdaLayerNormZero.load(sd, p + "norm1_context", dim, dtype));
            JointAttention a = add(built, JointAttention.loadImageFirst(sd, p + "attn", dim, c.numAttentionHeads(), dtype));
            FeedForward f = add(built, FeedForward.load(sd, p + "ff", dim, c.mlpHidden(), dtype));
            FeedForward fc = add(built, FeedForward.load(sd, p + "ff_context", dim, c.mlpHidden(), dtype));
            return new HunyuanVideoDualBlock(n1, n1c, a, f, fc);
        } catch (RuntimeException e) {
            Modules.closeAll(built);
            throw e;
        }
    }

    private static <T extends AutoCloseable> T add(List<AutoCloseable> built, T m) {
        built.add(m);
        return m;
    }

    /** @param cond SiLU of this block's conditioning [B, D]; @param mask [B,1,1,N+T] bool key mask (image first) */
    /** {@link #forward} in its own scope: the temporaries die here, both outputs are owned by the caller. */
    Output forwardOwned(Tensor x, Tensor ctx, Tensor cond, Rope imageRope, Tensor mask) {
        try (PointerScope scope = new PointerScope()) {
            Output o = forward(x, ctx, cond, imageRope, mask);
            return new Output(Tensors.keep(o.image()), Tensors.keep(o.text()));
        }
    }

    Output forward(Tensor x, Tensor ctx, Tensor cond, Rope imageRope, Tensor mask) {
        AdaLayerNormZero.Output m = norm1.forward(x, cond);
        AdaLayerNormZero.Output cm = norm1_context.forward(ctx, cond);
        JointAttention.Output a = attn.forward(m.normed(), cm.normed(), imageRope, mask);

        x = Ops.gatedResidual(x, m.gateMsa(), a.image());                                   // [B,N,D]
        ctx = Ops.gatedResidual(ctx, cm.gateMsa(), a.text());                               // [B,T,D]
        Tensor xn = Ops.layerNormModulate(x, 1e-6, m.shiftMlp(), m.scaleMlp());
        Tensor cn = Ops.layerNormModulate(ctx, 1e-6, cm.shiftMlp(), cm.scaleMlp());
        x = Ops.gatedResidual(x, m.gateMlp(), ff.forward(xn));
        ctx = Ops.gatedResidual(ctx, cm.gateMlp(), ff_context.forward(cn));
        return new Output(x, ctx);
    }

    @Override
    public void close() {
        Modules.closeAll(List.of(norm1, norm1_context, attn, ff, ff_context));
    }
}
