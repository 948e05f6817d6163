package io.mmdit4j.hunyuan;

import io.mmdit4j.guidance.Direction;
import io.mmdit4j.pipeline.GenerationRequest;
import io.mmdit4j.pipeline.GenerationResult;
import io.mmdit4j.pipeline.GenerationSettings;
import io.mmdit4j.pipeline.InvalidRequestException;
import io.mmdit4j.pipeline.LoadOptions;
import io.mmdit4j.pipeline.Pipeline;
import io.mmdit4j.pipeline.Pipelines;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.sampling.StepListener;
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

/** HunyuanVideo text-to-video through the generation API, end to end on the tiny folder assembled from the golden components. */
class HunyuanVideoPipelineTest {
    @TempDir
    static Path tmp;
    static Path folder;
    static Pipeline pipe;
    static HunyuanVideoPipeline impl;

    @BeforeAll
    static void load() throws IOException {
        folder = TinyHunyuanVideoFolder.write(tmp.resolve("hunyuan-tiny"));
        pipe = Pipelines.load(folder, LoadOptions.defaults());
        impl = pipe.unwrap(HunyuanVideoPipeline.class);
    }

    @AfterAll
    static void close() {
        if (pipe != null) pipe.close();
    }

    private static GenerationRequest.Builder base(List<String> prompts, int perPrompt, long[] seeds) {
        GenerationRequest.Builder b = GenerationRequest.builder().prompts(prompts).imagesPerPrompt(perPrompt).size(32, 32).frames(5).steps(2)
                .guidanceScale(6.0).maxSequenceLength(8);
        if (seeds != null) b.seeds(seeds);
        return b;
    }

    private static GenerationRequest request(List<String> prompts, int perPrompt, long[] seeds, Direction g) {
        GenerationRequest.Builder b = base(prompts, perPrompt, seeds);
        if (g != null) b.guide(g);
        return b.build();
    }

    private static Direction aesthetics(double w) {
        return Direction.preset("video-aesthetics").w(w).layers("1-");
    }

    @Test
    void generatesFramesOfTheRequestedShapeAndIsReproducible() {
        GenerationSettings r = pipe.resolve(request(List.of("a cat walks"), 2, new long[] {7}, null));
        assertArrayEquals(new long[] {2, 16, 2, 4, 4}, impl.latentShape(r));
        try (PointerScope s = new PointerScope(); GenerationResult a = pipe.generate(r, StepListener.NONE, null);
             GenerationResult b = pipe.generate(r, StepListener.NONE, null)) {
            assertTrue(a.isVideo());
            assertArrayEquals(new long[] {2, 5, 3, 32, 32}, Tensors.shape(a.frames()));
            assertArrayEquals(new long[] {2, 16, 2, 4, 4}, Tensors.shape(a.latents()));
            assertEquals(DType.F32, Tensors.dtype(a.frames()));
            float[] v = Tensors.toFloats(a.frames());
            for (float x : v) assertTrue(x >= 0f && x <= 1f, "frame values in [0, 1], got " + x);
            assertEquals(2, a.timings().steps().length);
            assertTrue(equal(a.frames(), b.frames()), "the same seeds must give the same video");
            assertFalse(equal(a.frames().select(0, 0), a.frames().select(0, 1)), "videos 0 and 1 use seeds 7 and 8");

            // One generator per video: video 1 (seed 8) alone starts from the same noise and gives the same video
            // (up to the batch size's effect on the GEMM kernels).
            GenerationSettings single = pipe.resolve(request(List.of("a cat walks"), 1, new long[] {8}, null));
            try (Tensor n2 = impl.noise(r); Tensor n1 = impl.noise(single); GenerationResult one = pipe.generate(single, StepListener.NONE, null)) {
                assertEquals(DType.F32, Tensors.dtype(n2), "initial latents are fp32");
                assertTrue(equal(n1.select(0, 0), n2.select(0, 1)));
                assertTrue(one.frames().select(0, 0).allclose(a.frames().select(0, 1), 1e-4, 1e-5, false));
            }
        }
    }

    @Test
    void zeroWeightGuidanceIsBitIdenticalAndNonZeroChangesTheVideo() {
        try (PointerScope s = new PointerScope();
             GenerationResult plain = pipe.generate(request(List.of("a red ball"), 1, new long[] {3}, null));
             GenerationResult zero = pipe.generate(request(List.of("a red ball"), 1, new long[] {3}, aesthetics(0)));
             GenerationResult guided = pipe.generate(request(List.of("a red ball"), 1, new long[] {3}, aesthetics(3.5)))) {
            assertTrue(equal(plain.frames(), zero.frames()), "w = 0 must give the unguided video bit for bit");
            assertTrue(equal(plain.latents(), zero.latents()));
            assertFalse(equal(plain.latents(), guided.latents()), "w = 3.5 must change the latents");
            assertEquals("Ultra-detailed, photorealistic, cinematic", guided.settings().guidance().get(0).pos());
        }
    }

    @Test
    void scheduleIsTheStaticShiftOfTheFolderConfigAndGuidanceIsEmbeddedAsGiven() {
        assertEquals(7.0, impl.schedulerConfig().shift());
        Schedule s = impl.schedule(pipe.resolve(base(List.of("x"), 1, null).steps(50).build()));
        assertEquals(1.0f, s.sigma(0));
        assertEquals(0.997093f, s.sigma(1), 1e-6f);   // MODEL-SPEC E.3
        assertEquals(0.125f, s.sigma(49), 1e-6f);
        assertEquals(1000f, s.timestep(0));
        try (Tensor g = impl.guidanceArgument(6.0, 2)) {
            assertArrayEquals(new float[] {6000f, 6000f}, Tensors.toFloats(g)); // fp32 model: no rounding
        }
    }

    @Test
    void denoiseIsTheReferenceLoopWrittenOutByHand() {
        GenerationSettings r = pipe.resolve(base(List.of("a cat walks"), 1, new long[] {5}).steps(3).guide(aesthetics(2.0)).build());
        try (PointerScope s = new PointerScope(); io.mmdit4j.text.llama.HunyuanPromptEncoder.Embeddings emb = impl.encode(r);
             Tensor noise = impl.noise(r);
             io.mmdit4j.guidance.ModulationGuidance g = io.mmdit4j.guidance.GuidancePlan.build(r.guidance(), r.images(), false,
                     impl.numGuidedBlocks(), r.normControl(), false, impl::delta);
             GenerationResult result = pipe.generate(r, StepListener.NONE, null)) {
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
                Tensor v = impl.transformer().forward(x, t, emb.promptEmbeds(), emb.attentionMask(), emb.pooled(), guidance, g, i, null, null);
                x = x.add(v.mul(new org.bytedeco.pytorch.Scalar(sigma[i + 1] - sigma[i])));
            }
            Schedule schedule = impl.schedule(r);
            for (int i = 0; i <= r.steps(); i++) assertEquals(sigma[i], schedule.sigma(i), 1e-6, "sigma " + i);
            // float32 sigmas and step sizes in the pipeline, float64 here: equal up to a few float32 roundings
            Tensor out = result.latents();
            assertTrue(out.allclose(x, 1e-5, 1e-4, false), "pipeline loop vs hand-written loop, max |diff| "
                    + out.sub(x).abs().max().item_float());
            assertFalse(equal(out, noise));
        }
    }

    @Test
    void bf16RoundsTheEmbeddedGuidanceLikeTheReference() {
        try (Pipeline bf16 = Pipelines.load(folder, LoadOptions.builder().dtype(DType.BF16).build());
             Tensor g = bf16.unwrap(HunyuanVideoPipeline.class).guidanceArgument(6.0, 1)) {
            assertArrayEquals(new float[] {6016f}, Tensors.toFloats(g.to(org.bytedeco.pytorch.global.torch.ScalarType.Float))); // MODEL-SPEC H.2
            try (PointerScope s = new PointerScope();
                 GenerationResult r = bf16.generate(request(List.of("a cat"), 1, new long[] {1}, aesthetics(3.5)))) {
                assertArrayEquals(new long[] {1, 5, 3, 32, 32}, Tensors.shape(r.frames()));
                assertEquals(DType.F32, Tensors.dtype(r.frames()));
                // MODEL-SPEC E.3: fp32 initial latents, then the Euler step casts to the model-output dtype
                assertEquals(DType.BF16, Tensors.dtype(r.latents()));
            }
        }
    }

    @Test
    void badRequestsFailBeforeAnyWork() {
        InvalidRequestException frames = assertThrows(InvalidRequestException.class, () -> pipe.resolve(base(List.of("x"), 1, null).frames(6).build()));
        assertTrue(frames.getMessage().contains("4k+1") && frames.getMessage().contains("5 or 9"), frames.getMessage());
        assertThrows(IllegalArgumentException.class, () -> base(List.of("x"), 1, null).frames(0));
        InvalidRequestException size = assertThrows(InvalidRequestException.class, () -> base(List.of("x"), 1, null).size(40, 32).build());
        assertTrue(size.getMessage().contains("multiples of 16"), size.getMessage());
        assertThrows(InvalidRequestException.class, () -> base(List.of("x"), 1, null).size(32, 33).build());
        assertThrows(InvalidRequestException.class, () -> base(List.of("x"), 1, null).steps(0).build());
        assertThrows(InvalidRequestException.class, () -> base(List.of(), 1, null).build());
        assertThrows(InvalidRequestException.class, () -> base(List.of("x"), 1, new long[] {1, 2}).build());
        assertThrows(IllegalArgumentException.class, () -> base(List.of("x"), 1, null).guidanceScale(Double.NaN));
        InvalidRequestException layers = assertThrows(InvalidRequestException.class, () -> pipe.generate(request(List.of("x"), 1, null,
                Direction.of("a", "b").label("d").w(1).layers("2-9"))));
        assertTrue(layers.getMessage().contains("9"), layers.getMessage());
        assertEquals(1, pipe.warnings(pipe.resolve(request(List.of("x"), 1, null, Direction.of("a", "b").w(1).layers("9-")))).size(),
                "an open range past the last block guides nothing, with a warning");
        try (Tensor wrong = io.mmdit4j.sampling.Noise.randn(new long[] {1, 16, 1, 4, 4}, 0, DType.F32)) {
            assertThrows(InvalidRequestException.class, () -> impl.noise(pipe.resolve(base(List.of("x"), 1, null).initialNoise(wrong).build())));
        }
    }

    @Test
    void aFolderOfAnotherPipelineIsRejected(@TempDir Path other) throws IOException {
        Files.writeString(other.resolve("model_index.json"), "{\"_class_name\": \"FluxPipeline\"}");
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> HunyuanVideoPipeline.load(other, DType.F32, DeviceSpec.CPU));
        assertTrue(e.getMessage().contains("HunyuanVideoPipeline"), e.getMessage());
    }
}
