package io.mmdit4j.guidance;

import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.util.Locale;

/**
 * Norm control of the guided conditioning vector, from the third-party replication of modulation guidance
 * (METHOD.md §6): it asks whether guidance works through the <b>direction</b> of {@code temb_guided} or through
 * its norm ({@code ||temb_guided|| ≈ 0.93·||temb||} on FLUX schnell with the aesthetics direction).
 * Applied per batch row where a guided vector is formed; rows and blocks without guidance are untouched.
 *
 * <ul>
 *   <li>{@link #NONE}: {@code temb + w·delta} as the paper does (the default; bit-identical to no norm control).</li>
 *   <li>{@link #KEEP_TEMB_NORM}: the guided vector rescaled to {@code ||temb||}: the guided direction at the plain norm
 *       (the replication found this keeps most of the gain).</li>
 *   <li>{@link #MATCH_GUIDED_NORM}: the plain {@code temb} rescaled to {@code ||temb + w·delta||}: the plain direction at
 *       the guided norm (this did not keep the gain).</li>
 * </ul>
 * Norms are the L2 norms of each row over the feature dimension, computed in fp32; the result is rounded once to
 * the compute dtype.
 */
public enum NormControl {
    NONE("none"),
    KEEP_TEMB_NORM("keep-temb-norm"),
    MATCH_GUIDED_NORM("match-guided-norm");

    private final String text;

    NormControl(String text) {
        this.text = text;
    }

    /** The text form: {@code none}, {@code keep-temb-norm}, {@code match-guided-norm}. */
    public String text() {
        return text;
    }

    @Override
    public String toString() {
        return text;
    }

    /** Accepts the text form or the enum name, case-insensitive ({@code keep-temb-norm}, {@code KEEP_TEMB_NORM}). */
    public static NormControl parse(String s) {
        if (s == null || s.isBlank()) return NONE;
        String k = s.trim().toLowerCase(Locale.ROOT).replace('_', '-');
        for (NormControl n : values()) {
            if (n.text.equals(k)) return n;
        }
        throw new IllegalArgumentException("norm control '" + s + "': expected none, keep-temb-norm or match-guided-norm");
    }

    /**
     * The vector a guided block receives, given the plain {@code temb} [B, D] and {@code guided = temb + Σ w·delta} [B, D].
     * Temporaries of the caller's scope.
     */
    public Tensor apply(Tensor temb, Tensor guided) {
        if (this == NONE) return guided;
        ScalarType dtype = temb.scalar_type();
        Tensor t = temb.to(ScalarType.Float);
        Tensor g = guided.to(ScalarType.Float);
        Tensor tn = rowNorms(t); // [B, 1]
        Tensor gn = rowNorms(g);
        Tensor out = this == KEEP_TEMB_NORM ? g.mul(tn.div(gn)) : t.mul(gn.div(tn));
        return out.to(dtype);
    }

    private static Tensor rowNorms(Tensor x) {
        return x.mul(x).sum(new long[] {1}, true, new ScalarTypeOptional()).sqrt();
    }
}
