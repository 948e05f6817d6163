package io.mmdit4j.train;

import io.mmdit4j.flux.FluxConfig;
import io.mmdit4j.flux.FluxInputs;
import io.mmdit4j.flux.FluxTransformer;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.io.RandomWeights;
import io.mmdit4j.lora.LoraAdapter;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.bytedeco.pytorch.global.torch.createCPUGenerator;
import static org.bytedeco.pytorch.global.torch.full;
import static org.bytedeco.pytorch.global.torch.randn;
import static org.bytedeco.pytorch.global.torch.zeros;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Training-step pieces beyond the goldens: bf16 autocast, LoRA files that the inference path merges, the LR schedule and EMA. */
class FluxTrainerTest {
    static final FluxConfig TINY = FluxGradientCheckTest.TINY;

    @TempDir
    Path tmp;

    static FluxTrainer.Batch batch(long seed) {
        GeneratorOptional g = new GeneratorOptional(createCPUGenerator(seed));
        TensorOptions f32 = new TensorOptions(ScalarType.Float);
        return new FluxTrainer.Batch(randn(new long[] {2, 4, 4, 6}, g, f32), randn(new long[] {2, 3, 12}, g, f32), randn(new long[] {2, 10}, g, f32),
                zeros(new long[] {3, 3}, f32), FluxInputs.imageIds(2, 3), full(new long[] {2}, new Scalar(3.5), f32));
    }

    @Test
    void bf16AutocastTracksFp32AndLeavesAutocastOff() {
        try (PointerScope scope = new PointerScope()) {
            FluxTrainer.Batch b = batch(1);
            Tensor noise = randn(new long[] {2, 4, 4, 6}, new GeneratorOptional(createCPUGenerator(2)), new TensorOptions(ScalarType.Float));
            Tensor sigmas = Tensors.fromFloats(new float[] {0.3f, 0.8f}, 2);
            double[] loss = new double[2];
            double[][] grad = new double[2][];
            for (int k = 0; k < 2; k++) {
                try (FluxTrainable m = FluxTrainable.random(TINY, 3, true); FluxTrainer t = new FluxTrainer(m, FluxTrainer.Optim.of(1e-3, 0)).autocastBf16(k == 1)) {
                    loss[k] = t.lossAndBackward(b, noise, sigmas, FlowMatching.Scheme.NONE, null);
                    grad[k] = Tensors.toDoubles(m.trainable().get("transformer_blocks.0.attn.to_q.weight").grad());
                    assertTrue(m.trainable().get("transformer_blocks.0.attn.to_q.weight").grad().scalar_type().value == ScalarType.Float.value);
                }
                assertFalse(torch.is_autocast_enabled(torch.DeviceType.CPU));
            }
            assertEquals(loss[0], loss[1], 0.02 * loss[0], "bf16 loss");
            assertTrue(loss[0] != loss[1], "autocast changed nothing");
            double dot = 0, n0 = 0, n1 = 0;
            for (int i = 0; i < grad[0].length; i++) {
                dot += grad[0][i] * grad[1][i];
                n0 += grad[0][i] * grad[0][i];
                n1 += grad[1][i] * grad[1][i];
            }
            assertTrue(dot / Math.sqrt(n0 * n1) > 0.99, "gradient direction " + dot / Math.sqrt(n0 * n1));
        }
    }

    @Test
    void aTrainedLoraFileMergesIntoTheInferenceModel() throws IOException {
        Map<String, Tensor> weights = FluxTransformer.randomWeights(TINY, 4, DType.F32);
        try (FluxTrainable m = FluxTrainable.of(TINY, weights, false);
             FluxTransformer inference = FluxTransformer.fromStateDict(RandomWeights.asStateDict("base", weights), TINY, DType.F32);
             PointerScope scope = new PointerScope()) {
            m.addLora(List.of("to_q", "to_k", "to_v", "proj_mlp"), 2, 4, null, 5);
            try (FluxTrainer t = new FluxTrainer(m, FluxTrainer.Optim.of(1e-2, 0))) {
                for (int s = 0; s < 3; s++) { // B leaves zero after the first steps
                    t.lossAndBackward(batch(10 + s), randn(new long[] {2, 4, 4, 6}, new GeneratorOptional(createCPUGenerator(20 + s)),
                            new TensorOptions(ScalarType.Float)), Tensors.fromFloats(new float[] {0.5f, 0.7f}, 2), FlowMatching.Scheme.NONE, null);
                    t.step(1e-2);
                }
            }
            m.save(tmp, null, Map.of());
            FluxInputs in = FluxGradientCheckTest.inputs(ScalarType.Float, 30);
            Tensor trained;
            try (NoGradGuard ng = new NoGradGuard()) {
                trained = m.model().forwardWithGrad(in, ModulationGuidance.none(), 0);
            }
            Tensor base = inference.forward(in);
            try (LoraAdapter lora = LoraAdapter.read(tmp.resolve("pytorch_lora_weights.safetensors"))) {
                lora.applyTo(inference, 1.0, true);
                Tensor merged = inference.forward(in);
                double diff = merged.sub(trained).abs().max().item_double(), moved = base.sub(trained).abs().max().item_double();
                assertTrue(moved > 1e-3, "the LoRA changes the output: " + moved);
                assertTrue(diff < 1e-5, "merged vs unmerged LoRA: " + diff);
                merged.close();
            }
            trained.close();
            base.close();
        } finally {
            Tensors.closeAll(weights.values());
        }
    }

    @Test
    void twoHundredTrainingStepsKeepRssFlat() {
        try (FluxTrainable m = FluxTrainable.random(TINY, 6, true); FluxTrainer t = new FluxTrainer(m, FluxTrainer.Optim.of(1e-4, 0.01));
             Ema ema = new Ema(m.trainable(), 0.99); PointerScope outer = new PointerScope()) {
            FluxTrainer.Batch b = batch(7);
            Tensor noise = randn(new long[] {2, 4, 4, 6}, new GeneratorOptional(createCPUGenerator(8)), new TensorOptions(ScalarType.Float));
            Tensor sigmas = Tensors.fromFloats(new float[] {0.3f, 0.8f}, 2);
            Runnable step = () -> {
                t.lossAndBackward(b, noise, sigmas, FlowMatching.Scheme.COSMAP, null);
                t.clip(1.0);
                t.step(1e-4);
            };
            for (int i = 0; i < 40; i++) step.run(); // warm-up: allocator pools, JIT, optimizer state
            long before = io.mmdit4j.runtime.ProcessMemory.rssMb();
            for (int i = 0; i < 200; i++) {
                step.run();
                ema.update(m.trainable(), i + 1);
            }
            long growthMb = io.mmdit4j.runtime.ProcessMemory.rssMb() - before;
            // a step makes hundreds of temporaries and an autograd graph; leaking them would add up fast
            assertTrue(growthMb < 40, "RSS grew by " + growthMb + " MB over 200 training steps");
        }
    }

    @Test
    void warmupThenCosine() {
        LrSchedule s = new LrSchedule(1e-3, 10, 110, true);
        assertEquals(0, s.at(0));
        assertEquals(5e-4, s.at(5), 1e-12);
        assertEquals(1e-3, s.at(10), 1e-12);
        assertEquals(5e-4, s.at(60), 1e-12);
        assertEquals(0, s.at(110), 1e-12);
        assertEquals(1e-3, LrSchedule.constant(1e-3).at(500));
    }

    @Test
    void stagedCosineFollowsEachStagesOwnCosine() {
        LrSchedule s = new LrSchedule(1e-3, 10, 410, true, List.of(110, 210));
        assertEquals(5e-4, s.at(5), 1e-12);
        assertEquals(5e-4, s.at(60), 1e-12); // the cosine of a 110-step run
        assertEquals(new LrSchedule(1e-3, 10, 110, true).at(109), s.at(109), 1e-15);
        assertEquals(new LrSchedule(1e-3, 10, 210, true).at(110), s.at(110), 1e-15); // continued to 210: that run's cosine
        assertEquals(new LrSchedule(1e-3, 10, 410, true).at(300), s.at(300), 1e-15);
        assertEquals(5e-4, s.at(210), 1e-12); // (210 - 10) / (410 - 10) = 1/2
        assertEquals(0, s.at(410), 1e-12);
        for (List<Integer> bad : List.of(List.of(210, 110), List.of(10), List.of(410), List.of(110, 110))) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new LrSchedule(1e-3, 10, 410, true, bad));
            assertTrue(e.getMessage().contains("stage ends must increase") && e.getMessage().contains(bad.toString()), e.getMessage());
        }
        assertThrows(IllegalArgumentException.class, () -> new LrSchedule(1e-3, 10, 410, false, List.of(110)));
    }

    @Test
    void emaFollowsWithWarmUpDecay() {
        try (PointerScope scope = new PointerScope()) {
            Tensor p = Tensors.fromFloats(new float[] {0f}, 1);
            try (Ema e = new Ema(Map.of("p", p), 0.9)) {
                assertEquals(2.0 / 11, e.decayAt(1), 1e-12);
                p.fill_(new Scalar(1.0));
                e.update(Map.of("p", p), 1);                      // d = 2/11: e = 9/11
                assertEquals(9.0 / 11, Tensors.toFloats(e.values().get("p"))[0], 1e-6);
                e.update(Map.of("p", p), 1000);                   // d = 0.9
                assertEquals(1 - 0.9 * (2.0 / 11), Tensors.toFloats(e.values().get("p"))[0], 1e-6);
            }
        }
    }
}
