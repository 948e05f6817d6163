package io.mmdit4j.nn;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.runtime.DType;

import java.util.ArrayList;
import java.util.List;

import static io.mmdit4j.nn.Modules.track;

/**
 * The modules of a single-stream block as FLUX ({@code FluxSingleTransformerBlock}) and HunyuanVideo
 * ({@code HunyuanVideoSingleTransformerBlock}) have them: one adaLN-Zero (shift, scale, gate), attention and MLP in
 * parallel on the modulated sequence, and one output projection of both. The forwards are the subclasses': the same
 * math, but FLUX's projects the concatenation without building it and fuses the gated residual (within rounding of the
 * reference), while HunyuanVideo's follows its reference op for op.
 */
public abstract class SingleStreamBlock implements AutoCloseable {
    public final AdaLayerNormZero norm; // 3 chunks: shift, scale, gate
    public final Linear proj_mlp;
    public final SelfAttention attn;    // q/k norms, no output projection (pre_only)
    public final Linear proj_out;       // [D, D + mlp]: attention then MLP

    /** Loads {@code p + "norm"}, {@code p + "proj_mlp"}, {@code p + "attn"} and {@code p + "proj_out"}. */
    protected SingleStreamBlock(StateDict sd, String p, long dim, long heads, long mlpHidden, DType dtype) {
        List<AutoCloseable> built = new ArrayList<>();
        try {
            norm = track(built, AdaLayerNormZero.loadSingle(sd, p + "norm", dim, dtype));
            proj_mlp = track(built, Linear.load(sd, p + "proj_mlp", dim, mlpHidden, dtype));
            attn = track(built, SelfAttention.loadFlux(sd, p + "attn", dim, heads, dtype));
            proj_out = track(built, Linear.load(sd, p + "proj_out", dim + mlpHidden, dim, dtype));
        } catch (RuntimeException e) {
            Modules.closeAll(built);
            throw e;
        }
    }

    @Override
    public void close() {
        Modules.closeAll(List.of(norm, proj_mlp, attn, proj_out));
    }
}
