package io.mmdit4j.sampling;

import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Seeds 0, 42 and 1234 against values printed by Python PyTorch:
 * {@code torch.randn(shape, generator=torch.Generator("cpu").manual_seed(s))} (fp32).
 */
class NoiseSeedsTest {

    @Test
    void smallDrawsMatchPyTorch() {
        float[][] expected = {
                {1.5409960746765137f, -0.293428897857666f, -2.1787893772125244f, 0.5684312582015991f},
                {0.33669036626815796f, 0.12880940735340118f, 0.23446236550807953f, 0.23033303022384644f},
                {0.0461304634809494f, 0.4024028182029724f, -1.0115290880203247f, 0.2167382389307022f}};
        long[] seeds = {0, 42, 1234};
        for (int i = 0; i < seeds.length; i++) {
            try (Tensor t = Noise.randn(new long[] {4}, seeds[i], DType.F32)) {
                assertArrayEquals(expected[i], Tensors.toFloats(t), 0f, "seed " + seeds[i]);
            }
        }
    }

    @Test
    void latentSizedDrawsMatchPyTorch() {
        try (Tensor t = Noise.randn(new long[] {1, 16, 8, 12}, 1234, DType.F32)) {
            float[] v = Tensors.toFloats(t);
            NoiseTest.assertDrawnByPyTorch(new float[] {-0.1117185652256012f, -0.49659010767936707f, 0.16307370364665985f,
                    -0.8816877603530884f}, new float[] {v[0], v[1], v[2], v[3]}, "seed 1234, 1536 values");
            double sum = 0;
            for (float f : v) sum += f;
            double perValue = io.mmdit4j.AtenCapability.vectorisedX86() ? 0 : NoiseTest.SCALAR_FILL;   // see NoiseTest
            assertEquals(-89.12345886230469, sum, 1e-3 + v.length * perValue);
        }
    }
}
