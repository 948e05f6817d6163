package io.mmdit4j.sampling;

import io.mmdit4j.AtenCapability;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Seeded noise against Python PyTorch. Hashes and bit patterns of the FLOAT32_THEN_CAST kernel were computed with
 * {@code torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed), dtype=...)} (PyTorch 2.13 CPU) as
 * {@code hashlib.sha256(t.contiguous().view(torch.int16).numpy().tobytes())}; per-row draws as
 * {@code torch.cat([randn((1,...), generator=Generator("cpu").manual_seed(s)) for s in seeds])}.
 *
 * <p>Draws of 16 or more float32 elements come from ATen's vectorised normal fill, which PyTorch runs on any x86-64 CPU
 * with AVX2; under {@code ATEN_CPU_CAPABILITY=default} (or a CPU without AVX2) libtorch itself draws slightly different
 * values (see {@link AtenCapability}), so their hard-coded values and hashes are checked bit for bit under AVX2/AVX512
 * and within {@link #SCALAR_FILL} otherwise, and what follows from the float32 draw is checked against the same
 * machine's draw under every capability. Smaller draws (a serial double kernel) are the same everywhere.
 */
class NoiseTest {
    private static final double U = 0x1p-24;                        // float32 unit roundoff
    private static final double RADIUS_MAX = Math.sqrt(-2 * Math.log(U)); // u1 = 1 - uniform >= 2^-24: radius <= 5.77

    /**
     * How far libtorch's scalar float32 normal fill (DEFAULT) can be from its AVX2 one on the same uniforms: both compute
     * {@code r·cos θ} and {@code r·sin θ} with {@code r = sqrt(-2 ln u1)}, {@code θ = 2π·u2}, but θ is rounded twice in
     * float in one ({@code float(2π)·u2}) and once from double in the other (≤ 3U·2π apart); cos/sin (each within 2 ulp,
     * |value| ≤ 1) add 4U; ln (within 2 ulp each), sqrt and the final product add ≤ 8U relative to r. So
     * {@code |Δx| ≤ r_max·(3U·2π + 4U + 8U)} ≈ 1.1e-5 (observed: 1.9e-6 over 65536 values).
     */
    static final double SCALAR_FILL = RADIUS_MAX * (3 * U * 2 * Math.PI + 4 * U + 8 * U);

    /** Float32 values drawn by PyTorch on a vectorised CPU: bit for bit under AVX2/AVX512, within {@link #SCALAR_FILL} else. */
    static void assertDrawnByPyTorch(float[] expected, float[] actual, String what) {
        boolean exact = AtenCapability.vectorisedX86();
        assertArrayEquals(expected, actual, exact ? 0f : (float) SCALAR_FILL, what + " (ATen " + AtenCapability.name() + ")");
    }

    /** A hash computed by PyTorch from a float32 draw of 16+ elements: reproducible under AVX2/AVX512 only. */
    static void assertPyTorchHash(String expected, Tensor t) {
        if (AtenCapability.vectorisedX86()) assertEquals(expected, Bits.sha256(t));
    }

    @Test
    void float32ValuesArePyTorchs() {
        try (PointerScope scope = new PointerScope()) {
            Tensor a = scope(Noise.randn(new long[] {4}, 42, DType.F32), scope);
            assertArrayEquals(new float[] {0.33669037f, 0.1288094f, 0.23446237f, 0.23033303f}, Tensors.toFloats(a), 0f);
            Tensor b = scope(Noise.randn(new long[] {1, 16, 64, 64}, 0, DType.F32), scope);
            float[] v = Tensors.toFloats(b);
            assertDrawnByPyTorch(new float[] {-1.1258398f, -1.1523602f, -0.25057858f, -0.4338788f},
                    new float[] {v[0], v[1], v[2], v[3]}, "seed 0, 65536 values");
            assertEquals(DType.F32, Tensors.dtype(b));
            assertArrayEquals(new long[] {1, 16, 64, 64}, Tensors.shape(b));
            Tensor c = scope(Noise.randn(new long[] {3}, 1, DType.F32), scope);
            assertArrayEquals(new float[] {0.6613521575927734f, 0.266924113035202f, 0.06167725846171379f}, Tensors.toFloats(c), 0f);
        }
    }

    /**
     * libtorch 2.10's own bf16 kernel: 8-bit uniforms and Box-Muller in bf16. The first 16 values were also reproduced
     * by an independent numpy emulation of that kernel (mt19937 words, {@code (w & 0xFF)/256}, bf16 arithmetic); they are
     * not the rounded float32 values (-1.125, -1.15625, ...).
     */
    @Test
    void libtorchBf16KernelDrawsInBf16() {
        try (PointerScope scope = new PointerScope()) {
            Tensor small = scope(Noise.randn(new long[] {4}, 42, DType.BF16), scope);
            assertEquals(DType.BF16, Tensors.dtype(small));
            assertArrayEquals(new short[] {16044, 15876, 15984, 15980}, Bits.shorts(small), "below 16 elements: serial double draw");
            Tensor big = scope(Noise.randn(new long[] {1, 16, 64, 64}, 0, DType.BF16), scope);
            float[] v = Tensors.toFloats(big);
            assertArrayEquals(new float[] {1.4609375f, 0.291015625f, 0.9609375f, 1.5703125f, 0.494140625f, -1.515625f, -0.25f,
                    0.57421875f, 0.326171875f, -0.56640625f, 0.54296875f, -0.5625f, 0.6015625f, 2.375f, 1.671875f, -0.8359375f},
                    java.util.Arrays.copyOf(v, 16), 0f);
        }
    }

    /** Later PyTorch (2.13) computes reduced-precision normals in float32: {@link Noise.Kernel#FLOAT32_THEN_CAST}. */
    @Test
    void float32ThenCastKernelIsPyTorch213() {
        Noise.Kernel k = Noise.Kernel.FLOAT32_THEN_CAST;
        try (PointerScope scope = new PointerScope()) {
            Tensor big = scope(Noise.randn(new long[] {1, 16, 64, 64}, 0, DType.BF16, k), scope);
            assertEquals(DType.BF16, Tensors.dtype(big));
            // the float32 draw rounded once, on any capability; PyTorch 2.13's bits where the float32 draw is PyTorch's
            Tensor big32 = scope(Noise.randn(new long[] {1, 16, 64, 64}, 0, DType.F32), scope);
            assertArrayEquals(Bits.bytes(big32.to(ScalarType.BFloat16)), Bits.bytes(big));
            assertPyTorchHash("4302cec01601b050ff75f25d76d499433ae0e3ffe57e2d4fd6e7d9aa36da7aaa", big);
            float[] v = Tensors.toFloats(big);
            boolean exact = AtenCapability.vectorisedX86();   // else one bf16 rounding step (2^-7 below 2) more
            assertArrayEquals(new float[] {-1.125f, -1.15625f, -0.25f, -0.43359375f}, java.util.Arrays.copyOf(v, 4),
                    exact ? 0f : (float) (SCALAR_FILL + 0x1p-7));
            Tensor f16 = scope(Noise.randn(new long[] {2, 16, 8, 12}, 3, DType.F16, k), scope);
            assertEquals(DType.F16, Tensors.dtype(f16));
            Tensor f16f32 = scope(Noise.randn(new long[] {2, 16, 8, 12}, 3, DType.F32), scope);
            assertArrayEquals(Bits.bytes(f16f32.to(ScalarType.Half)), Bits.bytes(f16));
            assertPyTorchHash("517a9794670829512093a8e91205bbeefdc238ec1d33842d86edeeefe72c3ec6", f16);
            // Fewer than 16 elements: PyTorch's serial path (a double per element, rounded once).
            assertArrayEquals(new short[] {16044, 15876, 15984, 15980}, Bits.shorts(scope(Noise.randn(new long[] {4}, 42, DType.BF16, k), scope)));
            assertArrayEquals(new short[] {-16647, -16613, -16625, 16171, -16822, 16377, -16461, -16573, 16162, -16538, -16625, 16177,
                    15972, -16597, 16175}, Bits.shorts(scope(Noise.randn(new long[] {3, 5}, 5, DType.BF16, k), scope)));
            assertArrayEquals(new short[] {-18486, -18219, -18313, 14679, -19887, 16325, -16997, -17894, 14605, -17615, -18314, 14727,
                    13086, -18092, 14714}, Bits.shorts(scope(Noise.randn(new long[] {3, 5}, 5, DType.F16, k), scope)));
            // float32 is the same with both kernels.
            Tensor a = scope(Noise.randn(new long[] {2, 16, 8, 12}, 9, DType.F32, k), scope);
            Tensor b = scope(Noise.randn(new long[] {2, 16, 8, 12}, 9, DType.F32), scope);
            assertArrayEquals(Bits.bytes(b), Bits.bytes(a));
        }
    }

    @Test
    void sameSeedSameBitsDifferentSeedDifferentBits() {
        try (PointerScope scope = new PointerScope()) {
            Tensor a = scope(Noise.randn(new long[] {2, 16, 8, 12}, 7, DType.BF16), scope);
            Tensor b = scope(Noise.randn(new long[] {2, 16, 8, 12}, 7, DType.BF16), scope);
            Tensor c = scope(Noise.randn(new long[] {2, 16, 8, 12}, 8, DType.BF16), scope);
            assertArrayEquals(Bits.bytes(a), Bits.bytes(b));
            assertFalse(java.util.Arrays.equals(Bits.bytes(a), Bits.bytes(c)));
        }
    }

    @Test
    void perRowSeedsDrawEachRowOnItsOwn() {
        try (PointerScope scope = new PointerScope()) {
            Tensor bf = scope(Noise.randnPerRow(new long[] {2, 16, 8, 12}, new long[] {42, 7}, DType.BF16,
                    Noise.Kernel.FLOAT32_THEN_CAST), scope);
            assertEquals(DType.BF16, Tensors.dtype(bf));
            assertArrayEquals(new long[] {2, 16, 8, 12}, Tensors.shape(bf));
            assertPyTorchHash("e154b917b021eccd1b0f041145e7d5c975ef92cca929e8b0dd51a0ce44f99484", bf);

            Tensor f = scope(Noise.randnPerRow(new long[] {2, 16, 8, 12}, new long[] {42, 7}, DType.F32), scope);
            assertArrayEquals(Bits.bytes(f.to(ScalarType.BFloat16)), Bits.bytes(bf), "bf16 rows: the float32 rows rounded");
            float[] row0 = Tensors.toFloats(f.select(0, 0)), row1 = Tensors.toFloats(f.select(0, 1));
            assertDrawnByPyTorch(new float[] {1.9269152879714966f, 1.4872840642929077f, 0.9007171988487244f},
                    new float[] {row0[0], row0[1], row0[2]}, "row 0, seed 42");
            assertDrawnByPyTorch(new float[] {-0.8201345205307007f, 0.39563116431236267f, 0.8989084959030151f},
                    new float[] {row1[0], row1[1], row1[2]}, "row 1, seed 7");
            // Each row equals a batch-1 draw with its seed; a single generator for the batch gives something else.
            Tensor alone = scope(Noise.randn(new long[] {1, 16, 8, 12}, 7, DType.F32), scope);
            assertArrayEquals(Tensors.toFloats(alone), row1, 0f);
            Tensor batched = scope(Noise.randn(new long[] {2, 16, 8, 12}, 42, DType.F32), scope);
            assertArrayEquals(Tensors.toFloats(batched.select(0, 0)), row0, 0f);
            assertFalse(java.util.Arrays.equals(Tensors.toFloats(batched.select(0, 1)), row1));
        }
    }

    @Test
    void fluxLatentShapeFloorsLikeDiffusers() {
        assertArrayEquals(new long[] {1, 16, 128, 128}, Noise.fluxLatentShape(1, 1024, 1024));
        assertArrayEquals(new long[] {2, 16, 8, 12}, Noise.fluxLatentShape(2, 64, 96));
        assertArrayEquals(new long[] {1, 16, 8, 12}, Noise.fluxLatentShape(1, 79, 111));   // floor(79/16)=4, floor(111/16)=6
        assertEquals(4096, Noise.fluxImageSeqLen(1024, 1024));
        assertEquals(24, Noise.fluxImageSeqLen(64, 96));
        assertArrayEquals(new long[] {2, 16, 8, 12}, Noise.sd3LatentShape(2, 64, 96));
    }

    @Test
    void badArgumentsAreRejectedClearly() {
        assertMessage(() -> Noise.fluxLatentShape(0, 64, 64), "batch must be >= 1");
        assertMessage(() -> Noise.fluxLatentShape(1, 8, 64), "at least 16x16");
        assertMessage(() -> Noise.randn(new long[] {2, -1}, 0, DType.F32), "negative size");
        assertMessage(() -> Noise.randn(new long[] {2}, 0, DType.I64), "floating dtype");
        assertMessage(() -> Noise.randnPerRow(new long[] {2, 4}, new long[] {1}, DType.F32), "needs 2 seeds, got 1");
        assertMessage(() -> Noise.randnPerRow(new long[] {}, new long[] {}, DType.F32), "batch axis");
        assertMessage(() -> Noise.randn(new long[] {2}, 0, DType.F32, null), "kernel is required");
    }

    static void assertMessage(org.junit.jupiter.api.function.Executable e, String part) {
        IllegalArgumentException x = assertThrows(IllegalArgumentException.class, e);
        assertTrue(x.getMessage().contains(part), "message '" + x.getMessage() + "' should contain '" + part + "'");
    }

    /** Hands a caller-owned result to the test's scope. */
    static Tensor scope(Tensor owned, PointerScope scope) {
        scope.attach(owned);
        owned.releaseReference();
        return owned;
    }
}
