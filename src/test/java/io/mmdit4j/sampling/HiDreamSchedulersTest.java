package io.mmdit4j.sampling;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.mmdit4j.GoldenData;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.bytedeco.pytorch.global.torch.equal;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * HiDream's schedulers: FlowMatchLCM's schedule and stochastic step (fresh noise every step, in the reference's order),
 * UniPC's flow-sigma schedule with int64 timesteps and its predictor–corrector update; the Euler sampler is
 * {@link Schedule#step} itself.
 */
class HiDreamSchedulersTest {
    private static JsonNode params(String c) throws IOException {
        Path json = GoldenData.root().resolve("hidream_pipeline/cases").resolve(c).resolve("case.json");
        return new ObjectMapper().readTree(Files.readString(json)).path("params");
    }

    private static float[] floats(JsonNode a) {
        float[] out = new float[a.size()];
        for (int i = 0; i < out.length; i++) out[i] = (float) a.get(i).asDouble();
        return out;
    }

    @Test
    void lcmScheduleIsTheReferencesWithTheDoubleShiftedLowEnd() throws IOException {
        JsonNode p = params("fast_plain");
        FlowMatchSchedulerConfig fast = FlowMatchSchedulerConfig.fromFile(GoldenData.root().resolve("hidream_pipeline/models/schedulers/fast"));
        assertEquals(3.0, fast.shift());
        Schedule s = new FlowMatchLcmScheduler(fast).schedule(3, null);
        assertArrayEquals(floats(p.get("timesteps")), s.timesteps());
        assertArrayEquals(floats(p.get("sigmas")), s.sigmas());
        FlowMatchSchedulerConfig dev = FlowMatchSchedulerConfig.fromFile(GoldenData.root().resolve("hidream_pipeline/models/schedulers/dev"));
        assertEquals(6.0, dev.shift());
    }

    @Test
    void uniPcScheduleHasFlowSigmasAndTruncatedIntegerTimesteps() throws IOException {
        JsonNode p = params("full_cfg5_plain");
        UniPcMultistepScheduler.Config c = UniPcMultistepScheduler.fromFile(GoldenData.root().resolve("hidream_pipeline/models/schedulers/full"));
        assertEquals(UniPcMultistepScheduler.Config.hidreamFull(), c);
        Schedule s = new UniPcMultistepScheduler(c).schedule(4);
        assertArrayEquals(new float[] {999, 899, 749, 499}, s.timesteps());
        assertArrayEquals(floats(p.get("sigmas")), s.sigmas());
    }

    @Test
    void lcmStepDrawsFreshNoiseEveryStepInTheReferencesOrder() {
        long[] shape = {2, 4, 2, 2};
        long[] seeds = {11, 12};
        Schedule s = new FlowMatchLcmScheduler(FlowMatchSchedulerConfig.sd3()).schedule(3, null);
        try (PointerScope scope = new PointerScope(); Noise.Stream stream = Noise.Stream.perRow(shape, seeds)) {
            Tensor initial = Tensors.keep(stream.next(DType.F32));
            assertTrue(equal(initial, Noise.randnPerRow(shape, seeds, DType.F32)), "the stream's first draw is the initial noise of each seed");
            List<Tensor> drawn = new ArrayList<>();
            Tensor x = initial, v = Noise.randn(shape, 5, DType.F32);
            try (Sampler lcm = FlowMatchLcmScheduler.sampler(s, i -> {
                Tensor n = stream.next(DType.F32);
                drawn.add(Tensors.keep(n.clone()));
                return n;
            })) {
                for (int i = 0; i < 3; i++) {
                    Tensor next = lcm.step(v, i, x);
                    // x0 = x − σ_i·v;  x' = (1 − σ_{i+1})·x0 + σ_{i+1}·noise_i
                    Tensor x0 = x.sub(v.mul(new Scalar((double) s.sigma(i))));
                    Tensor expected = x0.mul(new Scalar((double) (1f - s.sigma(i + 1)))).add(drawn.get(i).mul(new Scalar((double) s.sigma(i + 1))));
                    assertTrue(equal(expected, next), "step " + i);
                    x = next;
                }
            }
            assertEquals(3, drawn.size(), "one draw per step, also the last (σ_N = 0)");
            // the draw of step k is the (k+2)-th randn of each image's own seeded generator: an image alone gets the same
            try (Noise.Stream alone = Noise.Stream.perRow(new long[] {1, 4, 2, 2}, new long[] {12})) {
                alone.next(DType.F32).close();
                alone.next(DType.F32).close();
                assertTrue(equal(alone.next(DType.F32), drawn.get(1).narrow(0, 1, 1)), "row 1, step 1");
            }
            assertThrows(IllegalStateException.class, () -> FlowMatchLcmScheduler.sampler(s, i -> null).step(v, 1, initial), "steps run in order");
        }
    }

    @Test
    void uniPcEndsOnTheCleanSampleOfAnExactFlow() {
        // a model that knows the clean sample x0 predicts v = (x − x0)/σ: every x0 prediction is x0, so UniPC (predictor and
        // corrector, any order) walks the straight path and ends on x0.
        UniPcMultistepScheduler u = new UniPcMultistepScheduler(UniPcMultistepScheduler.Config.hidreamFull());
        Schedule s = u.schedule(6);
        try (PointerScope scope = new PointerScope(); Sampler sampler = u.sampler(s)) {
            Tensor x0 = Noise.randn(new long[] {1, 4, 4, 4}, 3, DType.F32);
            Tensor x = Noise.randn(new long[] {1, 4, 4, 4}, 4, DType.F32);
            for (int i = 0; i < s.steps(); i++) {
                Tensor v = x.sub(x0).div(new Scalar((double) s.sigma(i)));
                x = sampler.step(v, i, x);
            }
            assertTrue(x.allclose(x0, 1e-5, 1e-5, false), "max |x − x0| = " + x.sub(x0).abs().max().item_float());
        }
    }

    @Test
    void solvesTheOrderTwoSystemAsLapackDoes() {
        float[] x = UniPcMultistepScheduler.solve(new float[][] {{1, 1}, {-0.5f, 1}}, new float[] {0.5f, 0.25f}, 2);
        assertEquals(1f / 6, x[0], 1e-7);
        assertEquals(1f / 3, x[1], 1e-7);
        x = UniPcMultistepScheduler.solve(new float[][] {{1, 1}, {-3f, 1}}, new float[] {2f, -2f}, 2); // pivots on row 1
        assertEquals(1f, x[0], 1e-7);
        assertEquals(1f, x[1], 1e-7);
    }

    @Test
    void uniPcConfigRejectsWhatItDoesNotImplement() {
        ObjectMapper m = new ObjectMapper();
        assertThrows(io.mmdit4j.io.ModelFormatException.class, () -> UniPcMultistepScheduler.fromJson(m.readTree(
                "{\"prediction_type\": \"epsilon\"}"), "cfg"));
        assertThrows(io.mmdit4j.io.ModelFormatException.class, () -> UniPcMultistepScheduler.fromJson(m.readTree(
                "{\"prediction_type\": \"flow_prediction\", \"use_flow_sigmas\": true, \"use_karras_sigmas\": true}"), "cfg"));
        assertThrows(io.mmdit4j.io.ModelFormatException.class, () -> FlowMatchSchedulerConfig.fromJson(m.readTree(
                "{\"_class_name\": \"FlowMatchLCMScheduler\", \"scale_factors\": [1.5]}"), "cfg"));
    }
}
