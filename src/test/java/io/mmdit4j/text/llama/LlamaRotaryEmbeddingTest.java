package io.mmdit4j.text.llama;

import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** Rotate-half RoPE: the frequency table (plain, linear and llama3 scaling) and the pairing of channel i with i + Dh/2. */
class LlamaRotaryEmbeddingTest {
    private static LlamaConfig config(int headDim, double theta, LlamaConfig.RopeScaling scaling) {
        return new LlamaConfig(16, headDim, 8, 1, 1, 1, headDim, 1e-5, theta, scaling, 1 << 20, false, false);
    }

    @Test
    void plainAndLlama3Frequencies() {
        int dim = 128;
        double theta = 500000;
        LlamaConfig.RopeScaling llama3 = new LlamaConfig.RopeScaling("llama3", 8.0, 1.0, 4.0, 8192);
        try (PointerScope s = new PointerScope()) {
            float[] plain = Tensors.toFloats(LlamaRotaryEmbedding.inverseFrequencies(config(dim, theta, null)));
            float[] scaled = Tensors.toFloats(LlamaRotaryEmbedding.inverseFrequencies(config(dim, theta, llama3)));
            int low = 0, medium = 0, high = 0;
            for (int k = 0; k < dim / 2; k++) {
                double inv = 1.0 / Math.pow(theta, 2.0 * k / dim);
                assertEquals(inv, plain[k], 1e-6 * inv, "plain k=" + k);
                // Llama 3.1: wavelengths above 8192 are divided by 8, below 2048 kept, in between interpolated.
                double wavelen = 2 * Math.PI / inv, expected;
                if (wavelen < 8192 / 4.0) { expected = inv; high++; }
                else if (wavelen > 8192 / 1.0) { expected = inv / 8; low++; }
                else {
                    double smooth = (8192 / wavelen - 1) / (4 - 1);
                    expected = (1 - smooth) * inv / 8 + smooth * inv;
                    medium++;
                }
                assertEquals(expected, scaled[k], 1e-5 * expected, "llama3 k=" + k);
            }
            assertEquals(64, low + medium + high);
            assertEquals(true, low > 0 && medium > 0 && high > 0, "all three bands are exercised");
        }
    }

    @Test
    void rotatesChannelIWithChannelIPlusHalfAndLinearScalingDividesPositions() {
        int dim = 4;
        try (PointerScope s = new PointerScope();
             LlamaRotaryEmbedding rope = LlamaRotaryEmbedding.build(config(dim, 100.0, null), 3, DType.F32);
             LlamaRotaryEmbedding linear = LlamaRotaryEmbedding.build(config(dim, 100.0, LlamaConfig.RopeScaling.linear(2.0)), 5, DType.F32)) {
            // x [1,1,3,4] = (1, 2, 3, 4) at every position
            Tensor x = Tensors.fromFloats(new float[] {1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4}, 1, 1, 3, 4);
            float[] out = Tensors.toFloats(rope.apply(x));
            double[] freq = {1.0, 1.0 / 10.0}; // 1/100^(0/4), 1/100^(2/4)
            for (int p = 0; p < 3; p++) {
                double c0 = Math.cos(p * freq[0]), s0 = Math.sin(p * freq[0]), c1 = Math.cos(p * freq[1]), s1 = Math.sin(p * freq[1]);
                // pairs (x0, x2) and (x1, x3): out_i = x_i cos - x_{i+2} sin, out_{i+2} = x_{i+2} cos + x_i sin
                assertEquals(1 * c0 - 3 * s0, out[p * 4], 1e-5);
                assertEquals(2 * c1 - 4 * s1, out[p * 4 + 1], 1e-5);
                assertEquals(3 * c0 + 1 * s0, out[p * 4 + 2], 1e-5);
                assertEquals(4 * c1 + 2 * s1, out[p * 4 + 3], 1e-5);
            }
            float[] plainCos = Tensors.toFloats(rope.cos()), linearCos = Tensors.toFloats(linear.cos());
            for (int i = 0; i < dim; i++) assertEquals(plainCos[dim + i], linearCos[2 * dim + i], 1e-7, "position 2 / 2 = 1");
        }
    }

    /**
     * Llama-3.1's {@code llama3} scaling on numbers worked out by hand from the published formula (factor 8, low 1, high 4,
     * original context 2048 here so that a head of 8 has a frequency in each band; θ = 10000):
     * <pre>
     * k   ω_k = θ^(−2k/8)   wavelength 2π/ω   band (high < 2048/4 = 512 ≤ medium ≤ 2048 = 2048/1 < low)   ω'_k
     * 0   1                 6.283             high: kept                                                 1
     * 1   0.1               62.83             high: kept                                                 0.1
     * 2   0.01              628.3             medium: s = (2048/628.3 − 1)/(4 − 1) = 0.753164,           0.0078401886
     *                                          ω' = (1 − s)·ω/8 + s·ω
     * 3   0.001             6283              low: ω/8                                                    0.000125
     * </pre>
     * and the rotary table at position 100 rotates pair 2 by 100·ω'_2 = 0.78401886 rad: cos 0.70808142, sin 0.70613079
     * (rotate-half layout: channels 2 and 6), pair 3 by 0.0125 rad: cos 0.99992188.
     */
    @Test
    void llama3ScalingOnHandDerivedNumbers() {
        LlamaConfig.RopeScaling llama3 = new LlamaConfig.RopeScaling("llama3", 8.0, 1.0, 4.0, 2048);
        LlamaConfig c = config(8, 10000.0, llama3);
        try (PointerScope s = new PointerScope(); LlamaRotaryEmbedding rope = LlamaRotaryEmbedding.build(c, 101, DType.F32)) {
            float[] inv = Tensors.toFloats(LlamaRotaryEmbedding.inverseFrequencies(c));
            assertEquals(1.0, inv[0], 1e-7);
            assertEquals(0.1, inv[1], 1e-8);
            assertEquals(0.0078401886, inv[2], 1e-9);
            assertEquals(0.000125, inv[3], 1e-10);
            float[] cos = Tensors.toFloats(rope.cos()), sin = Tensors.toFloats(rope.sin());
            int row = 100 * 8;
            assertEquals(0.70808142, cos[row + 2], 1e-6);
            assertEquals(0.70808142, cos[row + 6], 1e-6, "cat(freqs, freqs): channel i + Dh/2 repeats channel i");
            assertEquals(0.70613079, sin[row + 2], 1e-6);
            assertEquals(0.99992188, cos[row + 3], 1e-7);
        }
    }
}
