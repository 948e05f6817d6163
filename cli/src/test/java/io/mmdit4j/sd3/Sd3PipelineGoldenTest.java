package io.mmdit4j.sd3;

import io.mmdit4j.GoldenData;
import io.mmdit4j.golden.CaseResult;
import io.mmdit4j.golden.GoldenRunner;
import io.mmdit4j.guidance.CfgRows;
import io.mmdit4j.guidance.Direction;
import io.mmdit4j.guidance.GuidancePlan;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.pipeline.CustomSigmas;
import io.mmdit4j.pipeline.GenerationRequest;
import io.mmdit4j.pipeline.GenerationResult;
import io.mmdit4j.pipeline.GenerationSettings;
import io.mmdit4j.pipeline.InvalidRequestException;
import io.mmdit4j.pipeline.LoadOptions;
import io.mmdit4j.pipeline.Pipeline;
import io.mmdit4j.pipeline.Pipelines;
import io.mmdit4j.pipeline.UnsupportedOptionException;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.sampling.Schedule;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.stream.Collectors;

import static org.bytedeco.pytorch.global.torch.equal;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** SD3 through the generation API end to end against diffusers, plus schedules, CFG rows of guidance, seeds, progress and bad requests. */
class Sd3PipelineGoldenTest {
    private static Pipeline pipe;

    @BeforeAll
    static void load() {
        pipe = Pipelines.load(Sd3TextEncodersGoldenTest.folder(), LoadOptions.defaults());
    }

    @AfterAll
    static void close() {
        pipe.close();
    }

    @Test
    void allSd3PipelineCasesPass() {
        List<CaseResult> results = new GoldenRunner().run(List.of(GoldenData.root().resolve("sd3_pipeline")), r -> { });
        List<String> bad = results.stream().filter(r -> r.status() != CaseResult.Status.PASS).map(CaseResult::line).collect(Collectors.toList());
        assertTrue(bad.isEmpty(), String.join("\n", bad));
        assertEquals(4, results.stream().map(CaseResult::caseName).distinct().count());
    }

    private static GenerationRequest.Builder base(List<String> prompts, double cfg, long[] seeds) {
        GenerationRequest.Builder b = GenerationRequest.builder().prompts(prompts).size(64, 48).steps(2).maxSequenceLength(16).cfg(cfg);
        if (seeds != null) b.seeds(seeds);
        return b;
    }

    private static GenerationRequest request(List<String> prompts, double cfg, long[] seeds, double[] sigmas, Direction g) {
        GenerationRequest.Builder b = base(prompts, cfg, seeds);
        if (sigmas != null) b.option(CustomSigmas.of(sigmas)).steps(CustomSigmas.of(sigmas).steps());
        if (g != null) b.guide(g);
        return b.build();
    }

    private static Schedule schedule(GenerationRequest r) {
        return pipe.unwrap(Sd3Pipeline.class).schedule(pipe.resolve(r));
    }

    @Test
    void schedulesDefaultRecipeAndDiffusersShiftedLists() {
        GenerationRequest def = GenerationRequest.builder().prompt("x").size(64, 64).steps(4).cfg(3.5).maxSequenceLength(16).build();
        assertArrayEquals(new float[] {1000f, 857.6923217773438f, 602.1505737304688f, 8.928571701049805f}, schedule(def).timesteps());
        double[] recipe = {1.0, 0.9454, 0.8959, 0.7904, 0.7371, 0.6022, 0.0};
        Schedule asGiven = schedule(request(List.of("x"), 0, null, recipe, null));
        assertArrayEquals(new float[] {1000f, 945.4000244140625f, 895.9000244140625f, 790.4000244140625f, 737.0999755859375f, 602.199951171875f},
                asGiven.timesteps());
        assertEquals(0f, asGiven.sigma(6));
        GenerationRequest shifted = GenerationRequest.builder().prompt("x").size(64, 64).steps(6).cfg(0).maxSequenceLength(16)
                .option(new CustomSigmas(recipe, true)).build();
        assertArrayEquals(new float[] {1000f, 981.1124877929688f, 962.7122192382812f, 918.7848510742188f, 893.743408203125f, 819.5426635742188f},
                schedule(shifted).timesteps(), "diffusers' set_timesteps(sigmas=) shifts by the config's 3.0");
        assertThrows(InvalidRequestException.class, () -> pipe.resolve(GenerationRequest.builder().prompt("x").steps(3).sigmas(1.0, 0.5).build()),
                "2 sigmas for 3 steps");
        assertThrows(IllegalArgumentException.class, () -> pipe.generate(request(List.of("x"), 0, null, new double[] {0.5, 0.9, 0.0}, null)));
    }

    @Test
    void guidanceRowsUnderCfg() {
        assertNull(GuidancePlan.transformerRowWeights(dir(CfgRows.BOTH, null), 2, true));
        assertArrayEquals(new double[] {0, 0, 1, 1}, GuidancePlan.transformerRowWeights(dir(CfgRows.COND, null), 2, true));
        assertArrayEquals(new double[] {-1, -1, 1, 1}, GuidancePlan.transformerRowWeights(dir(CfgRows.COND_NEG, null), 2, true));
        assertArrayEquals(new double[] {-1, -2, 1, 2}, GuidancePlan.transformerRowWeights(dir(CfgRows.COND_NEG, new double[] {1, 2}), 2, true));
        assertNull(GuidancePlan.transformerRowWeights(dir(CfgRows.COND_NEG, null), 2, false));
        assertArrayEquals(new double[] {0, 2}, GuidancePlan.transformerRowWeights(dir(CfgRows.COND, new double[] {0, 2}), 2, false));
        assertEquals(CfgRows.COND_NEG, CfgRows.parse("cond-neg"));
        assertThrows(IllegalArgumentException.class, () -> CfgRows.parse("uncond"));
    }

    private static Direction dir(CfgRows rows, double[] perImage) {
        Direction d = Direction.of("vivid colors", "washed out").label("d").w(2.0).layers(LayerSchedule.from(1)).rows(rows);
        return perImage == null ? d : d.rowWeights(perImage);
    }

    @Test
    void guidingOnlyTheConditionalHalfDiffersFromBothAndWZeroIsPlain() {
        try (GenerationResult plain = pipe.generate(request(List.of("a cat"), 3.5, new long[] {5}, null, null));
             GenerationResult w0 = pipe.generate(request(List.of("a cat"), 3.5, new long[] {5}, null, Direction.of("vivid", "dull").label("z").w(0.0)));
             GenerationResult both = pipe.generate(request(List.of("a cat"), 3.5, new long[] {5}, null, dir(CfgRows.BOTH, null)));
             GenerationResult cond = pipe.generate(request(List.of("a cat"), 3.5, new long[] {5}, null, dir(CfgRows.COND, null)))) {
            assertTrue(equal(plain.latents(), w0.latents()), "w = 0 is bit-identical to no guidance");
            assertFalse(equal(plain.latents(), both.latents()));
            assertFalse(equal(both.latents(), cond.latents()));
        }
    }

    @Test
    void theModelsRecommendationFillsWhatADirectionLeavesOpen() {
        GenerationSettings s = pipe.resolve(base(List.of("a cat"), 3.5, null).guide(Direction.preset("aesthetics")).build());
        Direction d = s.guidance().get(0);
        assertEquals(2.0, d.w(), "SD3.5: w 2 (METHOD.md section 4)");
        assertEquals("2-", d.layers().toString(), "from block 2");
        assertEquals("Ultra-detailed, photorealistic, cinematic", d.pos());
        d = pipe.resolve(base(List.of("a cat"), 3.5, null).guide(Direction.preset("aesthetics").w(5)).build()).guidance().get(0);
        assertEquals(5.0, d.w(), "an explicit weight wins");
    }

    @Test
    void sameSeedSameImageAndEachImageOfABatchIsReproducibleAlone() {
        try (GenerationResult batch = pipe.generate(request(List.of("a cat", "a dog"), 3.5, new long[] {7, 8}, null, null));
             GenerationResult again = pipe.generate(request(List.of("a cat", "a dog"), 3.5, new long[] {7, 8}, null, null));
             GenerationResult alone = pipe.generate(request(List.of("a dog"), 3.5, new long[] {8}, null, null))) {
            assertArrayEquals(new long[] {2, 3, 48, 64}, Tensors.shape(batch.images()));
            assertArrayEquals(new long[] {2, 16, 6, 8}, Tensors.shape(batch.latents()));
            assertTrue(equal(batch.images(), again.images()), "same seeds, same images");
            float[] a = Tensors.toFloats(batch.images().select(0, 1)), b = Tensors.toFloats(alone.images().select(0, 0));
            for (int i = 0; i < a.length; i++) assertEquals(b[i], a[i], 1e-5, "image 1 of the batch equals the same prompt and seed alone");
        }
    }

    @Test
    void customSigmasWithoutCfgRun() {
        double[] recipe = {1.0, 0.9454, 0.8959, 0.7904, 0.7371, 0.6022, 0.0};
        List<Float> sigmas = new ArrayList<>();
        try (GenerationResult r = pipe.generate(request(List.of("a cat"), 0, new long[] {1}, recipe, null), step -> sigmas.add(step.sigma()))) {
            assertEquals(6, r.timings().steps().length);
            assertEquals(List.of(0.9454f, 0.8959f, 0.7904f, 0.7371f, 0.6022f, 0f), sigmas);
        }
    }

    @Test
    void bf16RunsTheSameRecipeCloseToFp32() {
        Direction g = dir(CfgRows.BOTH, null);
        try (org.bytedeco.pytorch.Tensor noise = io.mmdit4j.sampling.Noise.randn(new long[] {1, 16, 6, 8}, 2, DType.F32);
             Pipeline bf16 = Pipelines.load(Sd3TextEncodersGoldenTest.folder(), LoadOptions.builder().dtype(DType.BF16).build());
             GenerationResult a = bf16.generate(base(List.of("a cat"), 3.5, null).guide(g).initialNoise(noise).build());
             GenerationResult b = pipe.generate(base(List.of("a cat"), 3.5, null).guide(g).initialNoise(noise).build())) {
            assertEquals(DType.BF16, Tensors.dtype(a.latents()), "latents stay in the model dtype");
            float[] x = Tensors.toFloats(a.latents()), y = Tensors.toFloats(b.latents());
            double worst = 0, scale = 0;
            for (int i = 0; i < x.length; i++) {
                worst = Math.max(worst, Math.abs(x[i] - y[i]));
                scale = Math.max(scale, Math.abs(y[i]));
            }
            assertTrue(worst < 0.05 * scale, "bf16 vs fp32 final latents differ by " + worst + " (max |latent| " + scale + ")");
        }
    }

    @Test
    void progressCanCancelAndBadRequestsAreRejected() {
        assertThrows(CancellationException.class, () -> pipe.generate(request(List.of("a cat"), 3.5, null, null, null), step -> false));
        assertThrows(InvalidRequestException.class, () -> GenerationRequest.builder().prompt("x").size(60, 64).build());
        assertThrows(InvalidRequestException.class, () -> pipe.resolve(GenerationRequest.builder().prompts(List.of("x", "y"))
                .cfg(4, List.of("a", "b", "c")).build()));
        IllegalArgumentException e = assertThrows(InvalidRequestException.class, () -> pipe.generate(request(List.of("x"), 0, null, null,
                Direction.of("a", "b").label("bad").w(1).layers("3,99"))));
        assertTrue(e.getMessage().contains("99"), e.getMessage());
        UnsupportedOptionException u = assertThrows(UnsupportedOptionException.class,
                () -> pipe.resolve(base(List.of("x"), 3.5, null).guidanceScale(3.5).build()));
        assertTrue(u.getMessage().contains("--guidance") && u.getMessage().contains("sd3"), u.getMessage());
    }
}
