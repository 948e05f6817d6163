package io.mmdit4j.hunyuan;

import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.guidance.StepWindow;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.sampling.Progress;
import io.mmdit4j.sampling.Schedule;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.bytedeco.pytorch.global.torch.equal;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** HunyuanVideo text-to-video end to end on the tiny folder assembled from the golden components. */
class HunyuanVideoPipelineTest {
    @TempDir
    static Path tmp;
    static Path folder;
    static HunyuanVideoPipeline pipe;

    @BeforeAll
    static void load() throws IOException {
        folder = TinyHunyuanVideoFolder.write(tmp.resolve("hunyuan-tiny"));
        pipe = HunyuanVideoPipeline.load(folder, DType.F32, DeviceSpec.CPU);
    }

    @AfterAll
    static void close() {
        if (pipe != null) pipe.close();
    }

    private static HunyuanVideoPipeline.Request request(List<String> prompts, int perPrompt, long[] seeds, List<HunyuanVideoPipeline.Direction> g) {
        return new HunyuanVideoPipeline.Request(prompts, perPrompt, 32, 32, 5, 2, 6.0, seeds, 8, g, null);
    }

    private static HunyuanVideoPipeline.Direction aesthetics(double w) {
        return new HunyuanVideoPipeline.Direction("video-aesthetics", "Ultra-detailed, photorealistic, cinematic", "Low-res, bad quality, blurred", w,
                LayerSchedule.parse("1-"), StepWindow.all(), null);
    }

    @Test
    void generatesFramesOfTheRequestedShapeAndIsReproducible() {
        HunyuanVideoPipeline.Request r = request(List.of("a cat walks"), 2, new long[] {7}, List.of());
        assertArrayEquals(new long[] {2, 16, 2, 4, 4}, pipe.latentShape(r));
        try (PointerScope s = new PointerScope(); HunyuanVideoPipeline.Result a = pipe.generate(r); HunyuanVideoPipeline.Result b = pipe.generate(r)) {
            assertArrayEquals(new long[] {2, 5, 3, 32, 32}, Tensors.shape(a.frames()));
            assertArrayEquals(new long[] {2, 16, 2, 4, 4}, Tensors.shape(a.finalLatents()));
            assertEquals(DType.F32, Tensors.dtype(a.frames()));
            float[] v = Tensors.toFloats(a.frames());
            for (float x : v) assertTrue(x >= 0f && x <= 1f, "frame values in [0, 1], got " + x);
            assertEquals(2, a.timings().steps().length);
            assertTrue(equal(a.frames(), b.frames()), "the same seeds must give the same video");
            assertFalse(equal(a.frames().select(0, 0), a.frames().select(0, 1)), "videos 0 and 1 use seeds 7 and 8");

            // One generator per video: video 1 (seed 8) alone starts from the same noise and gives the same video
            // (up to the batch size's effect on the GEMM kernels).
            HunyuanVideoPipeline.Request single = request(List.of("a cat walks"), 1, new long[] {8}, List.of());
            try (Tensor n2 = pipe.noise(r); Tensor n1 = pipe.noise(single); HunyuanVideoPipeline.Result one = pipe.generate(single)) {
                assertEquals(DType.F32, Tensors.dtype(n2), "initial latents are fp32");
                assertTrue(equal(n1.select(0, 0), n2.select(0, 1)));
                assertTrue(one.frames().select(0, 0).allclose(a.frames().select(0, 1), 1e-4, 1e-5, false));
            }
        }
    }

    @Test
    void zeroWeightGuidanceIsBitIdenticalAndNonZeroChangesTheVideo() {
        try (PointerScope s = new PointerScope();
             HunyuanVideoPipeline.Result plain = pipe.generate(request(List.of("a red ball"), 1, new long[] {3}, List.of()));
             HunyuanVideoPipeline.Result zero = pipe.generate(request(List.of("a red ball"), 1, new long[] {3}, List.of(aesthetics(0))));
             HunyuanVideoPipeline.Result guided = pipe.generate(request(List.of("a red ball"), 1, new long[] {3}, List.of(aesthetics(3.5))))) {
            assertTrue(equal(plain.frames(), zero.frames()), "w = 0 must give the unguided video bit for bit");
            assertTrue(equal(plain.finalLatents(), zero.finalLatents()));
            assertFalse(equal(plain.finalLatents(), guided.finalLatents()), "w = 3.5 must change the latents");
        }
    }

    @Test
    void scheduleIsTheStaticShiftOfTheFolderConfigAndGuidanceIsEmbeddedAsGiven() {
        assertEquals(7.0, pipe.schedulerConfig().shift());
        Schedule s = pipe.schedule(new HunyuanVideoPipeline.Request(List.of("x"), 1, 32, 32, 5, 50, 6.0, null, 8, null, null));
        assertEquals(1.0f, s.sigma(0));
        assertEquals(0.997093f, s.sigma(1), 1e-6f);   // MODEL-SPEC E.3
        assertEquals(0.125f, s.sigma(49), 1e-6f);
        assertEquals(1000f, s.timestep(0));
        try (Tensor g = pipe.guidanceArgument(6.0, 2)) {
            assertArrayEquals(new float[] {6000f, 6000f}, Tensors.toFloats(g)); // fp32 model: no rounding
        }
    }

    @Test
    void denoiseIsTheReferenceLoopWrittenOutByHand() {
        HunyuanVideoPipeline.Request r = new HunyuanVideoPipeline.Request(List.of("a cat walks"), 1, 32, 32, 5, 3, 6.0, new long[] {5}, 8,
                List.of(aesthetics(2.0)), null);
        try (PointerScope s = new PointerScope(); io.mmdit4j.text.llama.HunyuanPromptEncoder.Embeddings emb = pipe.encode(r);
             Tensor noise = pipe.noise(r); io.mmdit4j.guidance.ModulationGuidance g = pipe.guidance(r);
             Tensor out = pipe.denoise(r, emb, noise, g, Progress.NONE, null)) {
            // sigmas = linspace(1, 0, N+1)[:-1], shifted 7σ/(1+6σ); x += (σ_{i+1} − σ_i)·v with t = σ·1000 and guidance 6.0·1000
            double[] sigma = new double[r.steps() + 1];
            for (int i = 0; i < r.steps(); i++) {
                double u = 1.0 - (double) i / r.steps();
                sigma[i] = 7 * u / (1 + 6 * u);
            }
            Tensor x = noise;
            Tensor guidance = org.bytedeco.pytorch.global.torch.full(new long[] {1}, new org.bytedeco.pytorch.Scalar(6000.0),
                    new org.bytedeco.pytorch.TensorOptions(org.bytedeco.pytorch.global.torch.ScalarType.Float));
            for (int i = 0; i < r.steps(); i++) {
                Tensor t = org.bytedeco.pytorch.global.torch.full(new long[] {1}, new org.bytedeco.pytorch.Scalar((float) (sigma[i] * 1000)),
                        new org.bytedeco.pytorch.TensorOptions(org.bytedeco.pytorch.global.torch.ScalarType.Float));
                Tensor v = pipe.transformer().forward(x, t, emb.promptEmbeds(), emb.attentionMask(), emb.pooled(), guidance, g, i, null, null);
                x = x.add(v.mul(new org.bytedeco.pytorch.Scalar(sigma[i + 1] - sigma[i])));
            }
            Schedule schedule = pipe.schedule(r);
            for (int i = 0; i <= r.steps(); i++) assertEquals(sigma[i], schedule.sigma(i), 1e-6, "sigma " + i);
            // float32 sigmas and step sizes in the pipeline, float64 here: equal up to a few float32 roundings
            assertTrue(out.allclose(x, 1e-5, 1e-4, false), "pipeline loop vs hand-written loop, max |diff| "
                    + out.sub(x).abs().max().item_float());
            assertFalse(equal(out, noise));
        }
    }

    @Test
    void bf16RoundsTheEmbeddedGuidanceLikeTheReference() {
        try (HunyuanVideoPipeline bf16 = HunyuanVideoPipeline.load(folder, DType.BF16, DeviceSpec.CPU); Tensor g = bf16.guidanceArgument(6.0, 1)) {
            assertArrayEquals(new float[] {6016f}, Tensors.toFloats(g.to(org.bytedeco.pytorch.global.torch.ScalarType.Float))); // MODEL-SPEC H.2
            try (PointerScope s = new PointerScope();
                 HunyuanVideoPipeline.Result r = bf16.generate(request(List.of("a cat"), 1, new long[] {1}, List.of(aesthetics(3.5))))) {
                assertArrayEquals(new long[] {1, 5, 3, 32, 32}, Tensors.shape(r.frames()));
                assertEquals(DType.F32, Tensors.dtype(r.frames()));
                // MODEL-SPEC E.3: fp32 initial latents, then the Euler step casts to the model-output dtype
                assertEquals(DType.BF16, Tensors.dtype(r.finalLatents()));
            }
        }
    }

    @Test
    void badRequestsFailBeforeAnyWork() {
        IllegalArgumentException frames = assertThrows(IllegalArgumentException.class,
                () -> new HunyuanVideoPipeline.Request(List.of("x"), 1, 32, 32, 6, 2, 6.0, null, 8, null, null));
        assertTrue(frames.getMessage().contains("4k+1") && frames.getMessage().contains("5 or 9"), frames.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new HunyuanVideoPipeline.Request(List.of("x"), 1, 32, 32, 0, 2, 6.0, null, 8, null, null));
        IllegalArgumentException size = assertThrows(IllegalArgumentException.class,
                () -> new HunyuanVideoPipeline.Request(List.of("x"), 1, 40, 32, 5, 2, 6.0, null, 8, null, null));
        assertTrue(size.getMessage().contains("multiples of 16"), size.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new HunyuanVideoPipeline.Request(List.of("x"), 1, 32, 33, 5, 2, 6.0, null, 8, null, null));
        assertThrows(IllegalArgumentException.class, () -> new HunyuanVideoPipeline.Request(List.of("x"), 1, 32, 32, 5, 0, 6.0, null, 8, null, null));
        assertThrows(IllegalArgumentException.class, () -> new HunyuanVideoPipeline.Request(List.of(), 1, 32, 32, 5, 2, 6.0, null, 8, null, null));
        assertThrows(IllegalArgumentException.class, () -> new HunyuanVideoPipeline.Request(List.of("x"), 1, 32, 32, 5, 2, 6.0, new long[] {1, 2}, 8, null, null));
        assertThrows(IllegalArgumentException.class, () -> new HunyuanVideoPipeline.Request(List.of("x"), 1, 32, 32, 5, 2, Double.NaN, null, 8, null, null));
        IllegalArgumentException layers = assertThrows(IllegalArgumentException.class, () -> pipe.generate(request(List.of("x"), 1, null,
                List.of(new HunyuanVideoPipeline.Direction("d", "a", "b", 1, LayerSchedule.parse("9-"), null, null)))));
        assertTrue(layers.getMessage().contains("9"), layers.getMessage());
        try (Tensor wrong = io.mmdit4j.sampling.Noise.randn(new long[] {1, 16, 1, 4, 4}, 0, DType.F32)) {
            assertThrows(IllegalArgumentException.class,
                    () -> pipe.noise(new HunyuanVideoPipeline.Request(List.of("x"), 1, 32, 32, 5, 2, 6.0, null, 8, null, wrong)));
        }
    }

    @Test
    void aFolderOfAnotherPipelineIsRejected(@TempDir Path other) throws IOException {
        Files.writeString(other.resolve("model_index.json"), "{\"_class_name\": \"FluxPipeline\"}");
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> HunyuanVideoPipeline.load(other, DType.F32, DeviceSpec.CPU));
        assertTrue(e.getMessage().contains("HunyuanVideoPipeline"), e.getMessage());
    }
}
