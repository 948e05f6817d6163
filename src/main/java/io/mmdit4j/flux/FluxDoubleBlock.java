package io.mmdit4j.flux;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.nn.AdaLayerNormZero;
import io.mmdit4j.nn.FeedForward;
import io.mmdit4j.nn.JointAttention;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.nn.Ops;
import io.mmdit4j.nn.Rope;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Scopes;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import java.util.List;

/** {@code FluxTransformerBlock}: image and text streams with their own adaLN-Zero, joint attention (text first). */
final class FluxDoubleBlock implements AutoCloseable {
    final AdaLayerNormZero norm1;         // image modulation
    final AdaLayerNormZero norm1_context; // text modulation
    final JointAttention attn;
    final FeedForward ff;
    final FeedForward ff_context;

    /** Both streams after the block: image [B,N,D], text [B,T,D]. */
    record Output(Tensor image, Tensor text) {}

    private FluxDoubleBlock(AdaLayerNormZero norm1, AdaLayerNormZero norm1_context, JointAttention attn,
                            FeedForward ff, FeedForward ff_context) {
        this.norm1 = norm1;
        this.norm1_context = norm1_context;
        this.attn = attn;
        this.ff = ff;
        this.ff_context = ff_context;
    }

    static FluxDoubleBlock load(StateDict sd, String p, FluxConfig c, DType dtype) {
        long dim = c.innerDim();
        return new FluxDoubleBlock(AdaLayerNormZero.load(sd, p + "norm1", dim, dtype),
                AdaLayerNormZero.load(sd, p + "norm1_context", dim, dtype),
                JointAttention.loadFlux(sd, p + "attn", dim, c.numAttentionHeads(), dtype),
                FeedForward.load(sd, p + "ff", dim, c.mlpHidden(), dtype),
                FeedForward.load(sd, p + "ff_context", dim, c.mlpHidden(), dtype));
    }

    /** {@link #forward} in its own scope: the temporaries die here, both outputs are owned by the caller. */
    Output forwardOwned(Tensor x, Tensor ctx, Tensor cond, Rope rope) {
        try (PointerScope scope = new PointerScope()) {
            Output o = forward(x, ctx, cond, rope);
            return new Output(Tensors.keep(o.image()), Tensors.keep(o.text()));
        }
    }

    /** @param cond SiLU of this block's conditioning vector [B, D]; the same vector drives both streams */
    Output forward(Tensor x, Tensor ctx, Tensor cond, Rope rope) {
        AdaLayerNormZero.Output m = norm1.forward(x, cond);
        AdaLayerNormZero.Output cm = norm1_context.forward(ctx, cond);
        // attention and MLP internals die in their own scopes: a block's peak is the larger of the two
        Tensor[] a = Scopes.localAll(() -> {
            JointAttention.Output o = attn.forward(m.normed(), cm.normed(), rope);
            return new Tensor[] {o.image(), o.text()};
        });

        Tensor xa = Ops.gatedResidual(x, m.gateMsa(), a[0]);                             // [B,N,D]
        x = Scopes.local(() -> Ops.gatedResidual(xa, m.gateMlp(),
                ff.forward(Ops.layerNormModulate(xa, 1e-6, m.shiftMlp(), m.scaleMlp()))));

        Tensor ca = Ops.gatedResidual(ctx, cm.gateMsa(), a[1]);                          // [B,T,D]
        ctx = Scopes.local(() -> Ops.gatedResidual(ca, cm.gateMlp(),
                ff_context.forward(Ops.layerNormModulate(ca, 1e-6, cm.shiftMlp(), cm.scaleMlp()))));
        if (Tensors.dtype(ctx) == DType.F16) ctx = ctx.clamp(Fp16.MIN, Fp16.MAX);
        return new Output(x, ctx);
    }

    @Override
    public void close() {
        Modules.closeAll(List.of(norm1, norm1_context, attn, ff, ff_context));
    }
}
