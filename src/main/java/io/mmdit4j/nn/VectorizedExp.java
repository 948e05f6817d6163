package io.mmdit4j.nn;

/**
 * {@code exp} of a float exactly as libtorch's vectorised CPU kernels compute it (the AVX2 and AVX-512 kernel sets: SLEEF's
 * {@code Sleef_expf8_u10} / {@code Sleef_expf16_u10}, fused multiply-adds, 1-ulp accuracy), written out in Java so that
 * the result does not depend on the kernel set libtorch dispatches to.
 *
 * <p>Why: under {@code ATEN_CPU_CAPABILITY=default} libtorch's {@code exp} is the C library's {@code expf} (correctly
 * rounded), which differs from SLEEF's by 1 ulp on about 1 value in 10 (15 of the 128 frequencies of a 256-wide timestep
 * sinusoid). The reference (PyTorch on AVX2/AVX-512) used SLEEF's values, and the sinusoid multiplies each frequency
 * by the timestep before {@code sin}/{@code cos}: with guidance·1000 = 6000 one ulp of a frequency moves the argument by
 * ~3.6e-4, which reached 3.6e-5 in {@code temb} and 1.2e-4 in a HunyuanVideo output. Verified bit for bit against
 * libtorch's {@code exp} under {@code avx2} and {@code avx512} on every frequency table of half-width 1..1200 and 4M
 * random arguments in [-20, 20] ({@code VectorizedExpTest}).
 */
public final class VectorizedExp {
    private VectorizedExp() {}

    private static final float R_LN2 = 1.442695040888963407359924681001892137426645954152985934135449406931f;
    private static final float L2U = 0.693145751953125f;
    private static final float L2L = 1.428606765330187045e-06f;

    /** SLEEF's {@code xexpf} (sleefsimdsp.c) with every multiply-add fused, as its AVX2 and AVX-512 builds compute it. */
    public static float exp(float d) {
        int q = (int) Math.rint(d * R_LN2);                 // vrint_vi2_vf: round half to even
        float s = Math.fma((float) q, -L2U, d);
        s = Math.fma((float) q, -L2L, s);
        float u = 0.000198527617612853646278381f;
        u = Math.fma(u, s, 0.00139304355252534151077271f);
        u = Math.fma(u, s, 0.00833336077630519866943359f);
        u = Math.fma(u, s, 0.0416664853692054748535156f);
        u = Math.fma(u, s, 0.166666671633720397949219f);
        u = Math.fma(u, s, 0.5f);
        u = 1.0f + Math.fma(s * s, u, s);
        int h = q >> 1;                                     // vldexp2: u · 2^(q>>1) · 2^(q - (q>>1))
        u = u * Float.intBitsToFloat((h + 127) << 23) * Float.intBitsToFloat((q - h + 127) << 23);
        if (d < -104f) return 0f;
        if (d > 104f) return Float.POSITIVE_INFINITY;
        return u;
    }
}
