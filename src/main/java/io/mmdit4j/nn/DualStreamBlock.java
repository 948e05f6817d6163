package io.mmdit4j.nn;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Scopes;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.List;
import java.util.function.BiFunction;
import java.util.function.Supplier;

import static io.mmdit4j.nn.Modules.track;

/**
 * A double-stream block as FLUX ({@code FluxTransformerBlock}) and HunyuanVideo ({@code HunyuanVideoTransformerBlock})
 * have it: image and text streams with their own adaLN-Zero ({@code norm1}, {@code norm1_context}) and MLP
 * ({@code ff}, {@code ff_context}) meet in one joint attention; per stream {@code x += gate_msa·attn}, then
 * {@code x += gate_mlp·FF(LN(x)·(1 + scale_mlp) + shift_mlp)}. The models differ only in how the attention is called
 * (the subclasses), and FLUX clamps its text stream in fp16. HunyuanVideo's reference adds both attention residuals
 * before both MLPs; the streams do not meet there, so the values are the same in this order.
 */
public abstract class DualStreamBlock implements AutoCloseable {
    public final AdaLayerNormZero norm1;         // image modulation
    public final AdaLayerNormZero norm1_context; // text modulation
    public final JointAttention attn;
    public final FeedForward ff;
    public final FeedForward ff_context;

    /** Both streams after the block: image [B,N,D], text [B,T,D]. */
    public record Output(Tensor image, Tensor text) {}

    /** Loads {@code p + "norm1"}, ... with the joint attention's text tokens first (FLUX) or last (HunyuanVideo). */
    protected DualStreamBlock(StateDict sd, String p, long dim, long heads, long mlpHidden, boolean textFirst, DType dtype) {
        List<AutoCloseable> built = new ArrayList<>();
        try {
            norm1 = track(built, AdaLayerNormZero.load(sd, p + "norm1", dim, dtype));
            norm1_context = track(built, AdaLayerNormZero.load(sd, p + "norm1_context", dim, dtype));
            attn = track(built, textFirst ? JointAttention.loadFlux(sd, p + "attn", dim, heads, dtype)
                    : JointAttention.loadImageFirst(sd, p + "attn", dim, heads, dtype));
            ff = track(built, FeedForward.load(sd, p + "ff", dim, mlpHidden, dtype));
            ff_context = track(built, FeedForward.load(sd, p + "ff_context", dim, mlpHidden, dtype));
        } catch (RuntimeException e) {
            Modules.closeAll(built);
            throw e;
        }
    }

    /** A forward in its own scope: the temporaries die there, both outputs are owned by the caller. */
    protected static Output owned(Supplier<Output> forward) {
        try (PointerScope scope = new PointerScope()) {
            Output o = forward.get();
            return new Output(Tensors.keep(o.image()), Tensors.keep(o.text()));
        }
    }

    /**
     * @param cond      SiLU of this block's conditioning vector [B, D]; the same vector drives both streams
     * @param attention {@link #attn} on the modulated image [B,N,D] and text [B,T,D], as the model calls it
     */
    protected Output forward(Tensor x, Tensor ctx, Tensor cond, BiFunction<Tensor, Tensor, JointAttention.Output> attention) {
        AdaLayerNormZero.Output m = norm1.forward(x, cond);
        AdaLayerNormZero.Output cm = norm1_context.forward(ctx, cond);
        // attention and MLP internals die in their own scopes: a block's peak is the larger of the two
        Tensor[] a = Scopes.localAll(() -> {
            JointAttention.Output o = attention.apply(m.normed(), cm.normed());
            return new Tensor[] {o.image(), o.text()};
        });
        return new Output(stream(x, m, a[0], ff), stream(ctx, cm, a[1], ff_context)); // [B,N,D], [B,T,D]
    }

    /** One stream's residuals: {@code x += gate_msa·attention}, then the modulated MLP. */
    private static Tensor stream(Tensor x, AdaLayerNormZero.Output m, Tensor attention, FeedForward ff) {
        Tensor xa = Ops.gatedResidual(x, m.gateMsa(), attention);
        return Scopes.local(() -> Ops.gatedResidual(xa, m.gateMlp(), ff.forward(Ops.layerNormModulate(xa, 1e-6, m.shiftMlp(), m.scaleMlp()))));
    }

    @Override
    public void close() {
        Modules.closeAll(List.of(norm1, norm1_context, attn, ff, ff_context));
    }
}
