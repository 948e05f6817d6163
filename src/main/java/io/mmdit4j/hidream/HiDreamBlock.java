package io.mmdit4j.hidream;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.nn.Linear;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.nn.MoeFeedForward;
import io.mmdit4j.nn.Ops;
import io.mmdit4j.nn.Rope;
import io.mmdit4j.nn.SwiGlu;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Scopes;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

import java.util.function.UnaryOperator;

/**
 * One HiDream block ({@code double_stream_blocks.i.block} / {@code single_stream_blocks.j.block}): adaLN modulation from
 * {@code Linear(SiLU(cond))} (12 chunks in a double block: image shift/scale/gate for attention and MLP, then the same for
 * the text stream; 6 in a single block), LayerNorm without affine (eps 1e-6), {@link HiDreamAttention}, gated residuals,
 * and the image (or whole-sequence) feed-forward: a {@link MoeFeedForward} with routed experts, a plain {@link SwiGlu}
 * without. The double block's text stream has its own SwiGLU ({@code ff_t}).
 */
final class HiDreamBlock implements AutoCloseable {
    private static final double EPS = 1e-6;

    final boolean dual;
    final Linear adaLN_modulation;  // adaLN_modulation.1 [12D or 6D, D]
    final HiDreamAttention attn1;
    final UnaryOperator<Tensor> ff_i;
    final AutoCloseable ffModule;
    final SwiGlu ff_t;              // double blocks only

    private HiDreamBlock(boolean dual, Linear adaLN, HiDreamAttention attn, AutoCloseable ffModule, SwiGlu ffT) {
        this.dual = dual;
        this.adaLN_modulation = adaLN;
        this.attn1 = attn;
        this.ffModule = ffModule;
        this.ff_i = ffModule instanceof MoeFeedForward m ? m::forward : ((SwiGlu) ffModule)::forward;
        this.ff_t = ffT;
    }

    /** Loads {@code prefix} + {@code adaLN_modulation.1}, {@code attn1.*}, {@code ff_i.*} and, for a double block, {@code ff_t.*}. */
    static HiDreamBlock load(StateDict sd, String prefix, HiDreamConfig c, boolean dual, DType dtype) {
        long d = c.innerDim();
        Linear ada = Linear.load(sd, prefix + "adaLN_modulation.1", d, (dual ? 12 : 6) * d, dtype);
        HiDreamAttention attn = HiDreamAttention.load(sd, prefix + "attn1", d, c.numAttentionHeads(), !dual, dtype);
        AutoCloseable ff = c.numRoutedExperts() > 0
                ? MoeFeedForward.load(sd, prefix + "ff_i", d, c.expertHidden(), c.sharedExpertHidden(), c.numRoutedExperts(),
                        c.numActivatedExperts(), dtype)
                : SwiGlu.load(sd, prefix + "ff_i", d, c.expertHidden(), dtype);
        SwiGlu ffT = dual ? SwiGlu.load(sd, prefix + "ff_t", d, c.expertHidden(), dtype) : null;
        return new HiDreamBlock(dual, ada, attn, ff, ffT);
    }

    /** The modulation vectors of this block for {@code activatedCond = SiLU(cond)}: 12 (double) or 6 (single) × [B, D]. */
    TensorVector modulation(Tensor activatedCond) {
        return adaLN_modulation.forward(activatedCond).chunk(dual ? 12 : 6, 1);
    }

    /**
     * A double block in its own scope: image {@code x [B,S,D]} and text {@code ctx [B,T,D]} (the text stream with this
     * block's Llama tokens appended) → owned {image, text}.
     */
    Tensor[] forwardDouble(Tensor x, Tensor ctx, Tensor activatedCond, Tensor keyMask, Rope rope) {
        try (PointerScope scope = new PointerScope()) {
            TensorVector m = modulation(activatedCond);
            Tensor[] a = Scopes.localAll(() -> attn1.forward(Ops.layerNormModulate(x, EPS, m.get(0), m.get(1)),
                    Ops.layerNormModulate(ctx, EPS, m.get(6), m.get(7)), keyMask, rope));
            Tensor xa = Ops.gatedResidual(x, m.get(2), a[0]);
            Tensor ca = Ops.gatedResidual(ctx, m.get(8), a[1]);
            Tensor xo = Scopes.local(() -> Ops.gatedResidual(xa, m.get(5), ff_i.apply(Ops.layerNormModulate(xa, EPS, m.get(3), m.get(4)))));
            Tensor co = Scopes.local(() -> Ops.gatedResidual(ca, m.get(11), ff_t.forward(Ops.layerNormModulate(ca, EPS, m.get(9), m.get(10)))));
            return new Tensor[] {Tensors.keep(xo), Tensors.keep(co)};
        }
    }

    /** A single block over the whole sequence {@code h [B,S,D]} in its own scope; returns an owned [B,S,D]. */
    Tensor forwardSingle(Tensor h, Tensor activatedCond, Tensor keyMask, Rope rope) {
        return Scopes.owned(() -> {
            TensorVector m = modulation(activatedCond);
            Tensor att = Scopes.local(() -> attn1.forward(Ops.layerNormModulate(h, EPS, m.get(0), m.get(1)), keyMask, rope));
            Tensor ha = Ops.gatedResidual(h, m.get(2), att);
            return Scopes.local(() -> Ops.gatedResidual(ha, m.get(5), ff_i.apply(Ops.layerNormModulate(ha, EPS, m.get(3), m.get(4)))));
        });
    }

    @Override
    public void close() {
        Modules.closeAll(adaLN_modulation, attn1, ffModule, ff_t);
    }
}
