package io.mmdit4j.nn;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Scopes;
import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch.ScalarType;

import static org.bytedeco.pytorch.global.torch.rms_norm;
import static org.bytedeco.pytorch.global.torch.rsqrt;

/**
 * diffusers' {@code RMSNorm(dim, eps)} with a learnable scale: the variance and the normalisation run in
 * fp32, the result is cast to the weight's dtype, then multiplied by the weight in that dtype. In fp32
 * this equals {@code torch.nn.RMSNorm}; in bf16 it is the rounding sequence of the reference.
 */
public final class RmsNorm implements AutoCloseable {
    final Tensor weight; // [dim]
    private final Scalar eps;
    private final double epsValue;
    private final Scalar two = Native.keep(new Scalar(2.0));

    public RmsNorm(Tensor weight, double eps) {
        this.weight = weight;
        this.eps = Native.keep(new Scalar(eps));
        this.epsValue = eps;
    }

    public static RmsNorm load(StateDict sd, String key, long dim, double eps, DType dtype) {
        return new RmsNorm(sd.take(key, dtype, dim), eps);
    }

    public Tensor forward(Tensor x) { // [..., dim]
        io.mmdit4j.runtime.Placement.require("rms_norm", x);
        // x², the fp32 copy and the unscaled result die here; in place: the normalised tensor (or its cast) is a fresh temporary
        return Scopes.local(() -> {
            Tensor n = normalized(x).to(weight.scalar_type());
            return n.requires_grad() || weight.requires_grad() ? n.mul(weight) : n.mul_(weight); // autograd keeps n for the weight's gradient
        });
    }

    /**
     * transformers' {@code LlamaRMSNorm}: the same fp32 normalisation, but cast back to the <em>input's</em> dtype before
     * {@code weight * x} (type promotion then picks the wider dtype). Equals {@link #forward} when input and weight share a dtype.
     */
    public Tensor forwardCastToInput(Tensor x) { // [..., dim]
        io.mmdit4j.runtime.Placement.require("rms_norm", x);
        return weight.mul(normalized(x).to(x.scalar_type()));
    }

    /**
     * Whether {@link #normalized} is libtorch's {@code rms_norm} (one call) instead of its five ops ({@code pow}, {@code mean},
     * {@code add}, {@code rsqrt}, {@code mul}): the same formula in the same precision, without weight, so the cast to the
     * weight's dtype still comes before the scale as in the reference. {@code -Dmmdit.fusedRmsNorm=false} restores the op
     * chain (for the before/after benchmark and the golden comparisons in {@code benchmarks/README.md}).
     */
    static final boolean FUSED = !"false".equals(System.getProperty("mmdit.fusedRmsNorm"));
    private static final TensorOptional NO_WEIGHT = Native.keep(new TensorOptional());

    /** {@code x / sqrt(mean(x²) + eps)} over the last dimension, in fp32. */
    private Tensor normalized(Tensor x) {
        return FUSED ? normalizedFused(x) : normalizedOps(x);
    }

    /** {@link #normalized} as libtorch's {@code rms_norm} without weight. */
    Tensor normalizedFused(Tensor x) {
        try (DoubleOptional e = new DoubleOptional(epsValue)) {
            Tensor xf = upcast(x);
            return rms_norm(xf, new long[] {xf.size(-1)}, NO_WEIGHT, e);
        }
    }

    /** {@link #normalized} op by op, as the reference writes it. */
    Tensor normalizedOps(Tensor x) {
        Tensor xf = upcast(x);
        Tensor variance = xf.pow(two).mean(new long[] {-1}, true, new ScalarTypeOptional());
        return xf.mul(rsqrt(variance.add(eps)));
    }

    private static Tensor upcast(Tensor x) { // fp64 stays fp64 (gradient checks)
        return x.to(x.scalar_type().value == ScalarType.Double.value ? ScalarType.Double : ScalarType.Float);
    }

    @Override
    public void close() {
        Native.release(weight);
        Native.release(eps);
        Native.release(two);
    }
}
