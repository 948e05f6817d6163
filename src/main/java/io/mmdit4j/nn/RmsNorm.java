package io.mmdit4j.nn;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Scopes;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

import static org.bytedeco.pytorch.global.torch.rsqrt;

/**
 * diffusers' {@code RMSNorm(dim, eps)} with a learnable scale: the variance and the normalisation run in
 * fp32, the result is cast to the weight's dtype, then multiplied by the weight in that dtype. In fp32
 * this equals {@code torch.nn.RMSNorm}; in bf16 it is the rounding sequence of the reference.
 */
public final class RmsNorm implements AutoCloseable {
    final Tensor weight; // [dim]
    private final Scalar eps;
    private final Scalar two = Native.keep(new Scalar(2.0));

    public RmsNorm(Tensor weight, double eps) {
        this.weight = weight;
        this.eps = Native.keep(new Scalar(eps));
    }

    public static RmsNorm load(StateDict sd, String key, long dim, double eps, DType dtype) {
        return new RmsNorm(sd.take(key, dtype, dim), eps);
    }

    public Tensor forward(Tensor x) { // [..., dim]
        return Scopes.local(() -> { // x², the fp32 copy and the unscaled result die here
            Tensor xf = x.to(ScalarType.Float);
            Tensor variance = xf.pow(two).mean(new long[] {-1}, true, new ScalarTypeOptional());
            Tensor normed = xf.mul(rsqrt(variance.add(eps)));
            return normed.to(weight.scalar_type()).mul_(weight); // in place: normed (or its cast) is a fresh temporary
        });
    }

    /**
     * transformers' {@code LlamaRMSNorm}: the same fp32 normalisation, but cast back to the <em>input's</em> dtype before
     * {@code weight * x} (type promotion then picks the wider dtype). Equals {@link #forward} when input and weight share a dtype.
     */
    public Tensor forwardCastToInput(Tensor x) { // [..., dim]
        Tensor xf = x.to(ScalarType.Float);
        Tensor variance = xf.pow(two).mean(new long[] {-1}, true, new ScalarTypeOptional());
        Tensor normed = xf.mul(rsqrt(variance.add(eps)));
        return weight.mul(normed.to(x.scalar_type()));
    }

    @Override
    public void close() {
        Native.release(weight);
        Native.release(eps);
        Native.release(two);
    }
}
