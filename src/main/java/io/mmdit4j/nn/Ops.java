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
        io.mmdit4j.runtime.Placement.require("layer_norm", x);
        if (x.is_meta()) return x.clone(); // shapes only: libtorch has no meta kernel on this path
        return layer_norm(x, new long[] {x.size(-1)}, NONE, NONE, eps, false);
    }

    /**
     * adaLN modulation {@code x·(1 + scale[:, None]) + shift[:, None]} as one fused pass ({@code addcmul}): no
     * full-size temporary. In bf16 the product is not rounded before the add, so results can differ from the
     * reference's two ops by one bf16 ulp (well inside the golden tolerances).
     */
    public static Tensor modulate(Tensor normed, Tensor shift, Tensor scale) { // normed [B,S,D], shift/scale [B,D]
        io.mmdit4j.runtime.Placement.require("adaLN modulate", normed, shift, scale);
        return addcmul(shift.unsqueeze(1), normed, scale.add(ONE).unsqueeze(1));
    }

    /** {@link #modulate} of {@link #layerNorm}: the un-modulated normalisation dies at once instead of with the block. */
    public static Tensor layerNormModulate(Tensor x, double eps, Tensor shift, Tensor scale) { // x [B,S,D] -> [B,S,D]
        return io.mmdit4j.runtime.Scopes.local(() -> modulate(layerNorm(x, eps), shift, scale));
    }

    /**
     * The output of a convolution of {@code x} [B, C, *spatial] with {@code weight} [out, C/groups, *kernel] (dilation 1)
     * as an uninitialised meta tensor: libtorch has no meta kernel for the CPU convolutions ({@code convolution_overrideable
     * not implemented}), so the decoders take this shortcut on {@code meta} (shapes only).
     */
    public static Tensor metaConv(Tensor x, Tensor weight, long[] stride, long[] padding) {
        int spatial = (int) x.dim() - 2;
        long[] shape = new long[spatial + 2];
        shape[0] = x.size(0);
        shape[1] = weight.size(0);
        for (int d = 0; d < spatial; d++) {
            long s = stride.length == 1 ? stride[0] : stride[d], p = padding.length == 1 ? padding[0] : padding[d];
            shape[d + 2] = (x.size(d + 2) + 2 * p - weight.size(d + 2)) / s + 1;
        }
        return org.bytedeco.pytorch.global.torch.empty(shape, x.options(), new org.bytedeco.pytorch.MemoryFormatOptional());
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
        io.mmdit4j.runtime.Placement.require("gated residual", x, gate, y);
        return addcmul(x, gate.unsqueeze(1), y);
    }
}
