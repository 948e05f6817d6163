package io.mmdit4j.sampling;

import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;

import static io.mmdit4j.sampling.NoiseTest.assertMessage;
import static io.mmdit4j.sampling.NoiseTest.scope;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** MODEL-SPEC H.2: the bf16 rounding of FLUX's timestep and guidance on their way to the sinusoid. */
class FluxTimestepsTest {

    @Test
    void schnellTimestepsInBf16() {
        Schedule s = new FlowMatchEulerScheduler(FlowMatchSchedulerConfig.fluxSchnell(), FlowMatchEulerScheduler.Spacing.LINSPACE_TO_ONE_OVER_N).schedule(4, null);
        float[] expected = {1000f, 752f, 500f, 250f};
        for (int i = 0; i < 4; i++) assertEquals(expected[i], FluxTimesteps.modelTimestep(s.timestep(i), DType.BF16, DType.BF16), 0f);
        // In float32 nothing is rounded away.
        for (int i = 0; i < 4; i++) assertEquals(s.timestep(i), FluxTimesteps.modelTimestep(s.timestep(i), DType.F32, DType.F32), 0f);
    }

    @Test
    void devAt1024SquaredInBf16() {
        Schedule s = new FlowMatchEulerScheduler(FlowMatchSchedulerConfig.fluxDev(), FlowMatchEulerScheduler.Spacing.LINSPACE_TO_ONE_OVER_N).schedule(28, 4096);
        float[] raw = {1000f, 988.41f, 976.22f, 963.39f, 949.87f, 935.60f};
        float[] expected = {1000f, 988f, 976f, 964f, 948f, 936f};
        for (int i = 0; i < expected.length; i++) {
            assertEquals(raw[i], s.timestep(i), 0.01, "scheduler timestep " + i);
            assertEquals(expected[i], FluxTimesteps.modelTimestep(s.timestep(i), DType.BF16, DType.BF16), 0f, "step " + i);
        }
    }

    @Test
    void guidanceInBf16() {
        double[] scale = {3.5, 2.5, 4.0, 5.0, 6.0, 7.0};
        float[] expected = {3504f, 2496f, 4000f, 4992f, 6016f, 7008f};
        for (int i = 0; i < scale.length; i++) assertEquals(expected[i], FluxTimesteps.modelGuidance(scale[i], DType.BF16), 0f);
        assertEquals(3500f, FluxTimesteps.modelGuidance(3.5, DType.F32), 0f);
    }

    /** The pipeline's argument itself, checked against Python ({@code t.expand(2).to(bf16) / 1000}, PyTorch 2.13). */
    @Test
    void pipelineArgumentsAsPythonGivesThem() {
        Schedule s = new FlowMatchEulerScheduler(FlowMatchSchedulerConfig.fluxDev(), FlowMatchEulerScheduler.Spacing.LINSPACE_TO_ONE_OVER_N).schedule(4, 24);
        float[] arg = {1.0f, 0.828125f, 0.61328125f, 0.345703125f};
        float[] model = {1000f, 828f, 612f, 346f};
        try (PointerScope sc = new PointerScope()) {
            for (int i = 0; i < 4; i++) {
                Tensor t = scope(FluxTimesteps.pipelineTimestep(s, i, 2, DType.BF16), sc);
                assertEquals(DType.BF16, Tensors.dtype(t));
                assertArrayEquals(new long[] {2}, Tensors.shape(t));
                assertArrayEquals(new float[] {arg[i], arg[i]}, Tensors.toFloats(t), 0f);
                assertArrayEquals(new float[] {model[i], model[i]}, FluxTimesteps.embedded(t, DType.BF16), 0f);
                Tensor f = scope(FluxTimesteps.pipelineTimestep(s, i, 2, DType.F32), sc);
                assertEquals(s.timestep(i) / 1000f, Tensors.toFloats(f)[0], 0f);
            }
            Tensor g = scope(FluxTimesteps.pipelineGuidance(3.5, 3), sc);
            assertEquals(DType.F32, Tensors.dtype(g));
            assertArrayEquals(new float[] {3.5f, 3.5f, 3.5f}, Tensors.toFloats(g), 0f);
        }
    }

    @Test
    void badArguments() {
        assertMessage(() -> FluxTimesteps.pipelineTimestep(1000f, 0, DType.BF16), "batch must be >= 1");
        assertMessage(() -> FluxTimesteps.pipelineTimestep(1000f, 1, DType.I32), "floating dtype");
        assertMessage(() -> FluxTimesteps.pipelineGuidance(Double.NaN, 1), "finite");
    }
}
