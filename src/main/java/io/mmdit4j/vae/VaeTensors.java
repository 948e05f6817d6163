package io.mmdit4j.vae;

import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarOptional;
import org.bytedeco.pytorch.Tensor;

import java.util.Arrays;

import static org.bytedeco.pytorch.global.torch.clamp;

/** The argument checks and the output post-processing that the 2-D and the 3-D (HunyuanVideo) VAE share. */
public final class VaeTensors {
    private VaeTensors() {}

    private static final Scalar HALF = Native.keep(new Scalar(0.5));
    private static final ScalarOptional ZERO = Native.keep(new ScalarOptional(new Scalar(0.0)));
    private static final ScalarOptional ONE = Native.keep(new ScalarOptional(new Scalar(1.0)));

    /**
     * Fails unless {@code t} is a floating-point {@code [batch, channels, dims...]} tensor without empty dimensions;
     * {@code dims} names the axes after the channels in the message (e.g. "height", "width").
     */
    public static void check(String what, Tensor t, long channels, String... dims) {
        if (t == null || t.isNull()) throw new IllegalArgumentException(what + " is null");
        if (t.dim() != 2 + dims.length || t.size(1) != channels || Arrays.stream(Tensors.shape(t)).anyMatch(d -> d < 1)) {
            throw new IllegalArgumentException(what + " has shape " + Arrays.toString(Tensors.shape(t)) + ", expected [batch, " + channels
                    + ", " + String.join(", ", dims) + "]");
        }
        requireFloating(what, t);
    }

    public static void requireFloating(String what, Tensor t) {
        DType d;
        try {
            d = Tensors.dtype(t);
        } catch (IllegalArgumentException e) {
            d = null;
        }
        if (d == null || !d.isFloatingPoint()) {
            throw new IllegalArgumentException(what + " has dtype " + t.scalar_type() + ", expected a floating-point tensor");
        }
    }

    /** The pipelines' post-processing of decoded pixels: {@code clamp(decoded·0.5 + 0.5, 0, 1)} in the tensor's dtype. */
    public static Tensor toUnitRange(Tensor decoded) {
        return clamp(decoded.mul(HALF).add(HALF), ZERO, ONE);
    }
}
