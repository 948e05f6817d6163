package io.mmdit4j.nn;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.InferenceMode;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;

import static org.bytedeco.pytorch.global.torch.createCPUGenerator;
import static org.bytedeco.pytorch.global.torch.equal;
import static org.bytedeco.pytorch.global.torch.randn;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The fused RMSNorm ({@code torch::rms_norm}, {@link RmsNorm#FUSED}) against the reference's op chain: bit for bit in fp32,
 * from bf16 inputs and in fp64 (the gradient checks' dtype), with gradients (training runs the same module), so the switch
 * cannot move a golden comparison.
 */
class RmsNormFusedTest {
    private static Tensor random(long seed, ScalarType type, long... shape) {
        return randn(shape, new GeneratorOptional(createCPUGenerator(seed)), new TensorOptions(ScalarType.Float)).mul(new org.bytedeco.pytorch.Scalar(3.0))
                .to(type);
    }

    @Test
    void fusedEqualsTheOpChainBitForBit() {
        try (PointerScope scope = new PointerScope(); InferenceMode guard = new InferenceMode()) {
            for (ScalarType type : new ScalarType[] {ScalarType.Float, ScalarType.BFloat16, ScalarType.Double}) {
                for (long dim : new long[] {64, 128, 3072}) {
                    RmsNorm norm = new RmsNorm(random(1, type, dim), 1e-6);
                    Tensor x = random(2, type, 2, 5, dim);
                    assertTrue(equal(norm.normalizedFused(x), norm.normalizedOps(x)), type + " dim " + dim);
                }
            }
        }
    }

    @Test
    void gradientsAgree() {
        try (PointerScope scope = new PointerScope()) {
            RmsNorm norm = new RmsNorm(random(1, ScalarType.Double, 32), 1e-6);
            Tensor a = random(3, ScalarType.Double, 4, 32).set_requires_grad(true);
            Tensor b = a.detach().clone().set_requires_grad(true);
            norm.normalizedFused(a).pow(new org.bytedeco.pytorch.Scalar(3)).sum().backward();
            norm.normalizedOps(b).pow(new org.bytedeco.pytorch.Scalar(3)).sum().backward();
            double diff = a.grad().sub(b.grad()).abs().max().item_double();
            assertTrue(diff < 1e-12, "gradient difference " + diff);
        }
    }
}
