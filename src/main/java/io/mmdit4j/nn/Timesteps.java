package io.mmdit4j.nn;

import io.mmdit4j.runtime.Tensors;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch.ScalarType;

import static org.bytedeco.pytorch.global.torch.arange;
import static org.bytedeco.pytorch.global.torch.cat;
import static org.bytedeco.pytorch.global.torch.cos;
import static org.bytedeco.pytorch.global.torch.sin;

/**
 * diffusers' {@code get_timestep_embedding} with {@code flip_sin_to_cos=True, downscale_freq_shift=0}:
 * {@code [cos(t·f_i), sin(t·f_i)]}, {@code f_i = exp(-ln(10000)·i/half)}, all in fp32 with the reference's op order.
 * The {@code exp} is {@link VectorizedExp}: the reference's (libtorch's AVX2/AVX-512) rounding of the frequencies on every
 * kernel set, since {@code t·f_i} turns one ulp of a frequency into ~t·6e-8 of a sinusoid argument.
 */
public final class Timesteps {
    private Timesteps() {}

    public static Tensor sinusoidal(Tensor t, int dim) { // t [N] any float dtype -> [N, dim] fp32
        int half = dim / 2;
        TensorOptions f32 = new TensorOptions(ScalarType.Float);
        Tensor exponent = arange(new Scalar(0), new Scalar(half), f32).mul(new Scalar(-Math.log(10000.0)));
        exponent = exponent.div(new Scalar((double) half));
        float[] f = Tensors.toFloats(exponent);                      // the exponents: IEEE mul/div, the same on every kernel set
        for (int i = 0; i < f.length; i++) f[i] = VectorizedExp.exp(f[i]); // exp as the vectorised kernels (and the reference) round it
        Tensor freqs = Tensors.fromFloats(f, half);
        if (!t.is_cpu()) freqs = freqs.to(t.device(), ScalarType.Float);
        Tensor args = t.to(ScalarType.Float).unsqueeze(1).mul(freqs.unsqueeze(0)); // [N, half]
        return cat(new TensorVector(cos(args), sin(args)), 1);
    }

}
