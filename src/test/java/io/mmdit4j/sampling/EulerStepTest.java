package io.mmdit4j.sampling;

import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;

import static io.mmdit4j.sampling.NoiseTest.assertMessage;
import static io.mmdit4j.sampling.NoiseTest.scope;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Euler step in reduced precision, against diffusers' {@code FlowMatchEulerDiscreteScheduler.step} run with
 * Python PyTorch 2.13 (hashes as in {@link NoiseTest}): {@code sample = sample.to(float32);
 * prev = sample + (sigmas[i+1] - sigmas[i]) * model_output; prev.to(model_output.dtype)}.
 */
class EulerStepTest {
    /** flux_pipeline/dev_plain's schedule (4 steps, 24 tokens). */
    /** The inputs were drawn by PyTorch 2.13, whose bf16 draw is the rounded float32 one. */
    private static final Noise.Kernel PY213 = Noise.Kernel.FLOAT32_THEN_CAST;
    private static final Schedule DEV4 = new FlowMatchEulerScheduler(FlowMatchSchedulerConfig.fluxDev(), FlowMatchEulerScheduler.Spacing.LINSPACE_TO_ONE_OVER_N).schedule(4, 24);

    @Test
    void bf16StepIsDiffusersBitForBit() {
        try (PointerScope s = new PointerScope()) {
            Tensor x = scope(Noise.randn(new long[] {2, 16, 8, 12}, 1, DType.BF16, PY213), s);
            Tensor v = scope(Noise.randn(new long[] {2, 16, 8, 12}, 2, DType.BF16, PY213), s);
            Tensor prev = scope(DEV4.step(v, 1, x), s);
            assertEquals(DType.BF16, Tensors.dtype(prev));
            assertEquals("d8b5a68f165c78f8d0b45912e0b534c9fc3e81aab00716cc129fe1f856ea37f3", Bits.sha256(prev));

            // What that is: the 0-dim float32 step size is promoted to bf16 with the velocity, the product is rounded to
            // bf16, then added in float32. MODEL-SPEC B.6's "dt·float32(v)" differs in many elements.
            float dt = DEV4.dt(1);
            Tensor dtBf16 = v.mul(new Scalar(0.0)).add(new Scalar((double) dt)).to(ScalarType.BFloat16);   // bf16(dt) per element
            Tensor product = dtBf16.to(ScalarType.Float).mul(v.to(ScalarType.Float)).to(ScalarType.BFloat16);
            Tensor composed = x.to(ScalarType.Float).add(product.to(ScalarType.Float)).to(ScalarType.BFloat16);
            assertArrayEquals(Bits.bytes(composed), Bits.bytes(prev));
            Tensor specFormula = x.to(ScalarType.Float).add(v.to(ScalarType.Float).mul(new Scalar((double) dt))).to(ScalarType.BFloat16);
            short[] a = Bits.shorts(prev), b = Bits.shorts(specFormula);
            int differ = 0;
            for (int i = 0; i < a.length; i++) if (a[i] != b[i]) differ++;
            assertTrue(differ > 0, "the two bf16 formulas should not coincide on 3072 random values");
        }
    }

    @Test
    void float32SampleWithBf16VelocityGivesBf16() {
        try (PointerScope s = new PointerScope()) {
            Tensor x = scope(Noise.randn(new long[] {2, 16, 8, 12}, 1, DType.F32), s);
            Tensor v = scope(Noise.randn(new long[] {2, 16, 8, 12}, 2, DType.BF16, PY213), s);
            Tensor prev = scope(DEV4.step(v, 1, x), s);
            assertEquals(DType.BF16, Tensors.dtype(prev), "diffusers casts to the model output's dtype");
            // diffusers' ops written out (as in bf16StepIsDiffusersBitForBit), on this machine's draw of x: any capability
            Tensor dtBf16 = v.mul(new Scalar(0.0)).add(new Scalar((double) DEV4.dt(1))).to(ScalarType.BFloat16);
            Tensor product = dtBf16.to(ScalarType.Float).mul(v.to(ScalarType.Float)).to(ScalarType.BFloat16);
            assertArrayEquals(Bits.bytes(x.add(product.to(ScalarType.Float)).to(ScalarType.BFloat16)), Bits.bytes(prev));
            // Python's bits, where x is PyTorch's float32 draw (see NoiseTest)
            NoiseTest.assertPyTorchHash("234caf05d875318b118cffc3ab9473ef437d74ee14b2bee546cd006500ca05a6", prev);
        }
    }

    @Test
    void float32StepIsSamplePlusDtTimesV() {
        try (PointerScope s = new PointerScope()) {
            Tensor x = scope(Noise.randn(new long[] {3, 5}, 4, DType.F32), s);
            Tensor v = scope(Noise.randn(new long[] {3, 5}, 5, DType.F32), s);
            float[] xs = Tensors.toFloats(x), vs = Tensors.toFloats(v);
            for (int i = 0; i < DEV4.steps(); i++) {
                float dt = DEV4.sigma(i + 1) - DEV4.sigma(i);
                float[] got = Tensors.toFloats(scope(DEV4.step(v, i, x), s));
                for (int k = 0; k < xs.length; k++) assertEquals(xs[k] + dt * vs[k], got[k], 0f);
            }
        }
    }

    @Test
    void stepResultIsOwnedByTheCallerAndOutlivesScopes() {
        Tensor prev;
        try (PointerScope s = new PointerScope()) {
            Tensor x = Tensors.fromFloats(new float[] {1f, 2f}, 2);
            Tensor v = Tensors.fromFloats(new float[] {1f, -1f}, 2);
            prev = DEV4.step(v, 3, x);
        }
        try {
            float dt = -DEV4.sigma(3);
            assertArrayEquals(new float[] {1f + dt, 2f - dt}, Tensors.toFloats(prev), 0f);
        } finally {
            prev.close();
        }
    }

    /** A 1024² FLUX latent stepped 300 times, each result closed by its owner: native memory stays flat. */
    @Test
    void steppingDoesNotLeak() throws java.io.IOException {
        Schedule s = new FlowMatchEulerScheduler(FlowMatchSchedulerConfig.fluxSchnell(), FlowMatchEulerScheduler.Spacing.LINSPACE_TO_ONE_OVER_N).schedule(4, null);
        Tensor x = Noise.randn(Noise.fluxLatentShape(1, 1024, 1024), 0, DType.BF16);
        Tensor v = Noise.randn(Noise.fluxLatentShape(1, 1024, 1024), 1, DType.BF16);
        try {
            for (int i = 0; i < 20; i++) x = replace(x, s.step(v, i % 4, x));
            long before = io.mmdit4j.runtime.ProcessMemory.rssMb();
            for (int i = 0; i < 300; i++) x = replace(x, s.step(v, i % 4, x));
            long growthMb = io.mmdit4j.runtime.ProcessMemory.rssMb() - before;
            assertTrue(growthMb < 20, "RSS grew by " + growthMb + " MB over 300 steps of a 1 MB latent");
        } finally {
            x.close();
            v.close();
        }
    }


    private static Tensor replace(Tensor old, Tensor next) {
        old.close();
        return next;
    }

    @Test
    void badStepArguments() {
        try (PointerScope s = new PointerScope()) {
            Tensor x = Tensors.fromFloats(new float[] {1f, 2f}, 2);
            Tensor v3 = Tensors.fromFloats(new float[] {1f, 2f, 3f}, 3);
            assertMessage(() -> DEV4.step(v3, 0, x), "differ in shape");
            assertMessage(() -> DEV4.step(null, 0, x), "required");
            assertThrows(IndexOutOfBoundsException.class, () -> DEV4.step(x, 4, x));
            assertThrows(IndexOutOfBoundsException.class, () -> DEV4.step(x, -1, x));
            Tensor ints = x.to(ScalarType.Long);
            assertMessage(() -> DEV4.step(ints, 0, ints), "floating");
        }
    }
}
