package io.mmdit4j.nn;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.runtime.DType;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

/**
 * adaLN-Zero: {@code Linear(D -> nD)(SiLU(cond))} chunked into n modulation vectors [B, D] in diffusers' order
 * shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp, shift_msa2, scale_msa2, gate_msa2, of which a
 * variant has the first n: 6 in double-stream blocks ({@code AdaLayerNormZero}), 3 in single-stream blocks
 * ({@code AdaLayerNormZeroSingle}), 9 in SD3.5 Medium's dual blocks ({@code SD35AdaLayerNormZeroX}, which modulates
 * the same {@code LN(x)} twice: once for the joint attention, once for the block's second, image-only attention). The
 * three differ in nothing else, so one class serves them. It takes the already activated conditioning
 * {@code SiLU(cond)}, which the guidance plan computes once per distinct vector.
 */
public final class AdaLayerNormZero implements AutoCloseable {
    final Linear linear;
    private final double eps;
    private final int chunks;

    /**
     * The modulated input and the modulation vectors ([B, D] each); the variant's absent ones are null (single-stream:
     * all but the first three; {@code normed2} and {@code gateMsa2} unless 9 chunks).
     */
    public record Output(Tensor normed, Tensor shiftMsa, Tensor scaleMsa, Tensor gateMsa, Tensor shiftMlp, Tensor scaleMlp,
                         Tensor gateMlp, Tensor normed2, Tensor gateMsa2) {}

    /** @param chunks 6, 3 or 9 (see the class comment); the Linear must map D to chunks·D */
    public AdaLayerNormZero(Linear linear, double eps, int chunks) {
        if (chunks != 3 && chunks != 6 && chunks != 9) throw new IllegalArgumentException("adaLN-Zero has 3, 6 or 9 chunks, got " + chunks);
        this.linear = linear;
        this.eps = eps;
        this.chunks = chunks;
    }

    /** The double-stream variant ({@code AdaLayerNormZero}, 6 chunks) from {@code prefix.linear}. */
    public static AdaLayerNormZero load(StateDict sd, String prefix, long dim, DType dtype) {
        return load(sd, prefix, dim, 6, dtype);
    }

    /** The single-stream variant ({@code AdaLayerNormZeroSingle}: shift, scale, gate). */
    public static AdaLayerNormZero loadSingle(StateDict sd, String prefix, long dim, DType dtype) {
        return load(sd, prefix, dim, 3, dtype);
    }

    /** SD3.5 Medium's {@code SD35AdaLayerNormZeroX} (9 chunks, {@link Output#normed2} and {@link Output#gateMsa2}). */
    public static AdaLayerNormZero loadX(StateDict sd, String prefix, long dim, DType dtype) {
        return load(sd, prefix, dim, 9, dtype);
    }

    private static AdaLayerNormZero load(StateDict sd, String prefix, long dim, int chunks, DType dtype) {
        return new AdaLayerNormZero(Linear.load(sd, prefix + ".linear", dim, chunks * dim, dtype), 1e-6, chunks);
    }

    /** The modulation vectors alone (statistics), chunks x [B, D] in the order of {@link Output}. */
    public TensorVector modulation(Tensor activatedCond) {
        return linear.forward(activatedCond).chunk(chunks, 1);
    }

    public Output forward(Tensor x, Tensor activatedCond) { // x [B,S,D], activatedCond [B,D]
        TensorVector c = modulation(activatedCond); // chunks x [B, D]
        Tensor normed, normed2 = null;
        if (chunks == 9) { // two modulated copies of one LN(x)
            Tensor ln = Ops.layerNorm(x, eps);
            normed = Ops.modulate(ln, c.get(0), c.get(1));
            normed2 = Ops.modulate(ln, c.get(6), c.get(7));
        } else {
            normed = Ops.layerNormModulate(x, eps, c.get(0), c.get(1));
        }
        return new Output(normed, c.get(0), c.get(1), c.get(2), chunk(c, 3), chunk(c, 4), chunk(c, 5), normed2, chunk(c, 8));
    }

    private static Tensor chunk(TensorVector c, int i) {
        return i < c.size() ? c.get(i) : null;
    }

    @Override
    public void close() {
        linear.close();
    }
}
