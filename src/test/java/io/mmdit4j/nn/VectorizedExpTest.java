package io.mmdit4j.nn;

import io.mmdit4j.AtenCapability;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.bytedeco.pytorch.global.torch.arange;
import static org.bytedeco.pytorch.global.torch.exp;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * {@link VectorizedExp}: libtorch's vectorised (SLEEF u10) {@code exp} in Java, so that the timestep sinusoid's frequencies
 * are those of the reference under every ATen capability.
 */
class VectorizedExpTest {

    /** The sinusoid exponents {@code arange(half)·(-ln 1e4) / half} as {@link Timesteps} computes them. */
    private static float[] exponents(int half) {
        Tensor e = arange(new Scalar(0), new Scalar(half), new TensorOptions(ScalarType.Float)).mul(new Scalar(-Math.log(10000.0)))
                .div(new Scalar((double) half));
        return Tensors.toFloats(e);
    }

    /** Under AVX2/AVX512, libtorch's exp is SLEEF's: bit for bit on every frequency table and on random arguments. */
    @Test
    void equalsLibtorchVectorisedExpBitForBit() {
        assumeTrue(AtenCapability.vectorisedX86(), "DEFAULT: libtorch's exp is the C library's (see the next test)");
        try (PointerScope scope = new PointerScope()) {
            for (int half = 1; half <= 1200; half++) {
                float[] e = exponents(half);
                float[] torch = Tensors.toFloats(exp(Tensors.fromFloats(e, half)));
                for (int i = 0; i < half; i++) {
                    assertEquals(Float.floatToRawIntBits(torch[i]), Float.floatToRawIntBits(VectorizedExp.exp(e[i])), "half " + half + " i " + i);
                }
            }
            int n = 1 << 20;
            float[] x = new float[n];
            Random r = new Random(7);
            for (int i = 0; i < n; i++) x[i] = (float) (r.nextDouble() * 200 - 100);
            float[] torch = Tensors.toFloats(exp(Tensors.fromFloats(x, n)));
            for (int i = 0; i < n; i++) assertEquals(Float.floatToRawIntBits(torch[i]), Float.floatToRawIntBits(VectorizedExp.exp(x[i])), "exp(" + x[i] + ")");
        }
    }

    /**
     * Any capability: the 256-wide sinusoid's 128 frequencies are the correctly rounded exp except 15, one ulp away, whose
     * values are SLEEF's as libtorch printed them under AVX2 and AVX512 (the ones a DEFAULT run used to miss).
     */
    @Test
    void sinusoidFrequenciesAreTheVectorisedKernelsOnes() {
        int[] index = {13, 14, 26, 33, 44, 53, 56, 70, 84, 89, 91, 101, 108, 112, 119};
        int[] sleef = {0x3ec8eb24, 0x3ebaf81a, 0x3e1db040, 0x3dbe94c8, 0x3d2cba16, 0x3cb4c692, 0x3c91ad3a, 0x3bd4ca16, 0x3b1b690e,
                0x3ad8e674, 0x3abbd3ea, 0x3a36ee9e, 0x39dd1722, 0x39a5cb60, 0x394860c0};
        try (PointerScope scope = new PointerScope()) {
            float[] e = exponents(128);
            int k = 0;
            for (int i = 0; i < 128; i++) {
                int got = Float.floatToRawIntBits(VectorizedExp.exp(e[i]));
                int rounded = Float.floatToRawIntBits((float) Math.exp(e[i]));
                if (k < index.length && index[k] == i) {
                    assertEquals(sleef[k], got, "f_" + i);
                    assertEquals(1, Math.abs(got - rounded), "f_" + i + " is one ulp from the correctly rounded value");
                    k++;
                } else {
                    assertEquals(rounded, got, "f_" + i);
                }
            }
            // the sinusoid uses them: t·f_i with the same f_i whatever the capability
            float[] s = Tensors.toFloats(Timesteps.sinusoidal(Tensors.fromFloats(new float[] {6000f}, 1), 256));
            assertEquals((float) Math.sin(6000f * Float.intBitsToFloat(sleef[0])), s[128 + 13], 2e-7f);
        }
    }

    @Test
    void limits() {
        assertEquals(1f, VectorizedExp.exp(0f));
        assertEquals(0f, VectorizedExp.exp(-105f));
        assertEquals(Float.POSITIVE_INFINITY, VectorizedExp.exp(105f));
        assertTrue(Math.abs(VectorizedExp.exp(1f) - (float) Math.E) <= Math.ulp((float) Math.E));
    }
}
