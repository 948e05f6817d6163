package io.mmdit4j.nn;

import static org.bytedeco.pytorch.global.torch.addcmul;

import io.mmdit4j.runtime.Native;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;

import static org.bytedeco.pytorch.global.torch.layer_norm;

/** Stateless pieces shared by the models, written as PyTorch issues them so that results match bit for bit. */
public final class Ops {
    private Ops() {}

    /** Reused constants (allocating a Scalar per call costs a few microseconds). */
    public static final Scalar ONE = Native.keep(new Scalar(1.0));
    private static final TensorOptional NONE = Native.keep(new TensorOptional());

    /** {@code nn.LayerNorm(D, eps, elementwise_affine=False)} over the last dimension. */
    public static Tensor layerNorm(Tensor x, double eps) {
        if (x.is_meta()) return x.clone(); // shapes only: libtorch has no meta kernel on this path
        return layer_norm(x, new long[] {x.size(-1)}, NONE, NONE, eps, false);
    }

    /**
     * adaLN modulation {@code x·(1 + scale[:, None]) + shift[:, None]} as one fused pass ({@code addcmul}): no
     * full-size temporary. In bf16 the product is not rounded before the add, so results can differ from the
     * reference's two ops by one bf16 ulp (well inside the golden tolerances).
     */
    public static Tensor modulate(Tensor normed, Tensor shift, Tensor scale) { // normed [B,S,D], shift/scale [B,D]
        return addcmul(shift.unsqueeze(1), normed, scale.add(ONE).unsqueeze(1));
    }

    /** {@link #modulate} of {@link #layerNorm}: the un-modulated normalisation dies at once instead of with the block. */
    public static Tensor layerNormModulate(Tensor x, double eps, Tensor shift, Tensor scale) { // x [B,S,D] -> [B,S,D]
        return io.mmdit4j.runtime.Scopes.local(() -> modulate(layerNorm(x, eps), shift, scale));
    }

    /**
     * GELU of a fresh temporary {@code h}: in place (one activation-sized tensor less) unless {@code h} requires grad,
     * where autograd needs the input of the activation and gets the out-of-place op (the same values).
     */
    public static Tensor gelu(Tensor h, String approximate) {
        return h.requires_grad() ? org.bytedeco.pytorch.global.torch.gelu(h, approximate) : org.bytedeco.pytorch.global.torch.gelu_(h, approximate);
    }

    /** {@code x + gate[:, None] * y} as one fused pass ({@code addcmul}). */
    public static Tensor gatedResidual(Tensor x, Tensor gate, Tensor y) {
        return addcmul(x, gate.unsqueeze(1), y);
    }
}
