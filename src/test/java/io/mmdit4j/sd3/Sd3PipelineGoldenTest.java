package io.mmdit4j.sd3;

import io.mmdit4j.GoldenData;
import io.mmdit4j.golden.CaseResult;
import io.mmdit4j.golden.GoldenRunner;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
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

/** Sd3Pipeline end to end against diffusers, plus schedules, CFG rows of guidance, seeds, progress and bad requests. */
class Sd3PipelineGoldenTest {
    private static Sd3Pipeline pipe;

    @BeforeAll
    static void load() {
        pipe = Sd3Pipeline.load(Sd3TextEncodersGoldenTest.folder(), DType.F32, DeviceSpec.CPU);
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

    private static Sd3Pipeline.Request request(List<String> prompts, double cfg, long[] seeds, double[] sigmas, List<Sd3Pipeline.Direction> g) {
        int steps = sigmas == null ? 2 : sigmas[sigmas.length - 1] == 0 ? sigmas.length - 1 : sigmas.length;
        return new Sd3Pipeline.Request(prompts, null, 1, 64, 48, steps, cfg, seeds, 16, sigmas, false, null, g, null);
    }

    @Test
    void schedulesDefaultRecipeAndDiffusersShiftedLists() {
        Sd3Pipeline.Request def = new Sd3Pipeline.Request(List.of("x"), null, 1, 64, 64, 4, 3.5, null, 16, null, false, null, null, null);
        assertArrayEquals(new float[] {1000f, 857.6923217773438f, 602.1505737304688f, 8.928571701049805f}, pipe.schedule(def).timesteps());
        double[] recipe = {1.0, 0.9454, 0.8959, 0.7904, 0.7371, 0.6022, 0.0};
        Schedule asGiven = pipe.schedule(request(List.of("x"), 0, null, recipe, null));
        assertArrayEquals(new float[] {1000f, 945.4000244140625f, 895.9000244140625f, 790.4000244140625f, 737.0999755859375f, 602.199951171875f},
                asGiven.timesteps());
        assertEquals(0f, asGiven.sigma(6));
        Sd3Pipeline.Request shifted = new Sd3Pipeline.Request(List.of("x"), null, 1, 64, 64, 6, 0, null, 16, recipe, true, null, null, null);
        assertArrayEquals(new float[] {1000f, 981.1124877929688f, 962.7122192382812f, 918.7848510742188f, 893.743408203125f, 819.5426635742188f},
                pipe.schedule(shifted).timesteps(), "diffusers' set_timesteps(sigmas=) shifts by the config's 3.0");
        assertThrows(IllegalArgumentException.class, () -> new Sd3Pipeline.Request(List.of("x"), null, 1, 64, 64, 3, 0, null, 16,
                new double[] {1.0, 0.5}, false, null, null, null), "2 sigmas for 3 steps");
        assertThrows(IllegalArgumentException.class, () -> pipe.generate(request(List.of("x"), 0, null, new double[] {0.5, 0.9, 0.0}, null)));
    }

    @Test
    void guidanceRowsUnderCfg() {
        Sd3Pipeline.Request cfg = request(List.of("a", "b"), 4, null, null, null);
        Sd3Pipeline.Request nocfg = request(List.of("a", "b"), 1, null, null, null);
        assertNull(Sd3Pipeline.transformerRowWeights(cfg, dir(Sd3Pipeline.CfgRows.BOTH, null)));
        assertArrayEquals(new double[] {0, 0, 1, 1}, Sd3Pipeline.transformerRowWeights(cfg, dir(Sd3Pipeline.CfgRows.COND, null)));
        assertArrayEquals(new double[] {-1, -1, 1, 1}, Sd3Pipeline.transformerRowWeights(cfg, dir(Sd3Pipeline.CfgRows.COND_NEG, null)));
        assertArrayEquals(new double[] {-1, -2, 1, 2}, Sd3Pipeline.transformerRowWeights(cfg, dir(Sd3Pipeline.CfgRows.COND_NEG, new double[] {1, 2})));
        assertNull(Sd3Pipeline.transformerRowWeights(nocfg, dir(Sd3Pipeline.CfgRows.COND_NEG, null)));
        assertArrayEquals(new double[] {0, 2}, Sd3Pipeline.transformerRowWeights(nocfg, dir(Sd3Pipeline.CfgRows.COND, new double[] {0, 2})));
        assertEquals(Sd3Pipeline.CfgRows.COND_NEG, Sd3Pipeline.CfgRows.parse("cond-neg"));
        assertThrows(IllegalArgumentException.class, () -> Sd3Pipeline.CfgRows.parse("uncond"));
    }

    private static Sd3Pipeline.Direction dir(Sd3Pipeline.CfgRows rows, double[] perImage) {
        return new Sd3Pipeline.Direction("d", "vivid colors", "washed out", 2.0, LayerSchedule.from(1), null, perImage, rows);
    }

    @Test
    void guidingOnlyTheConditionalHalfDiffersFromBothAndWZeroIsPlain() {
        try (Sd3Pipeline.Result plain = pipe.generate(request(List.of("a cat"), 3.5, new long[] {5}, null, null));
             Sd3Pipeline.Result w0 = pipe.generate(request(List.of("a cat"), 3.5, new long[] {5}, null,
                     List.of(new Sd3Pipeline.Direction("z", "vivid", "dull", 0.0, null, null, null, null))));
             Sd3Pipeline.Result both = pipe.generate(request(List.of("a cat"), 3.5, new long[] {5}, null, List.of(dir(Sd3Pipeline.CfgRows.BOTH, null))));
             Sd3Pipeline.Result cond = pipe.generate(request(List.of("a cat"), 3.5, new long[] {5}, null, List.of(dir(Sd3Pipeline.CfgRows.COND, null))))) {
            assertTrue(equal(plain.finalLatents(), w0.finalLatents()), "w = 0 is bit-identical to no guidance");
            assertFalse(equal(plain.finalLatents(), both.finalLatents()));
            assertFalse(equal(both.finalLatents(), cond.finalLatents()));
        }
    }

    @Test
    void sameSeedSameImageAndEachImageOfABatchIsReproducibleAlone() {
        try (Sd3Pipeline.Result batch = pipe.generate(request(List.of("a cat", "a dog"), 3.5, new long[] {7, 8}, null, null));
             Sd3Pipeline.Result again = pipe.generate(request(List.of("a cat", "a dog"), 3.5, new long[] {7, 8}, null, null));
             Sd3Pipeline.Result alone = pipe.generate(request(List.of("a dog"), 3.5, new long[] {8}, null, null))) {
            assertArrayEquals(new long[] {2, 3, 48, 64}, Tensors.shape(batch.images()));
            assertArrayEquals(new long[] {2, 16, 6, 8}, Tensors.shape(batch.finalLatents()));
            assertTrue(equal(batch.images(), again.images()), "same seeds, same images");
            float[] a = Tensors.toFloats(batch.images().select(0, 1)), b = Tensors.toFloats(alone.images().select(0, 0));
            for (int i = 0; i < a.length; i++) assertEquals(b[i], a[i], 1e-5, "image 1 of the batch equals the same prompt and seed alone");
        }
    }

    @Test
    void customSigmasWithoutCfgRun() {
        double[] recipe = {1.0, 0.9454, 0.8959, 0.7904, 0.7371, 0.6022, 0.0};
        List<Float> sigmas = new ArrayList<>();
        try (Sd3Pipeline.Result r = pipe.generate(request(List.of("a cat"), 0, new long[] {1}, recipe, null), (i, n, s, ns) -> sigmas.add(s))) {
            assertEquals(6, r.timings().steps().length);
            assertEquals(List.of(0.9454f, 0.8959f, 0.7904f, 0.7371f, 0.6022f, 0f), sigmas);
        }
    }

    @Test
    void bf16RunsTheSameRecipeCloseToFp32() {
        List<Sd3Pipeline.Direction> g = List.of(dir(Sd3Pipeline.CfgRows.BOTH, null));
        try (org.bytedeco.pytorch.Tensor noise = io.mmdit4j.sampling.Noise.randn(new long[] {1, 16, 6, 8}, 2, DType.F32);
             Sd3Pipeline bf16 = Sd3Pipeline.load(Sd3TextEncodersGoldenTest.folder(), DType.BF16, DeviceSpec.CPU);
             Sd3Pipeline.Result a = bf16.generate(new Sd3Pipeline.Request(List.of("a cat"), null, 1, 64, 48, 2, 3.5, null, 16, null, false, null, g, noise));
             Sd3Pipeline.Result b = pipe.generate(new Sd3Pipeline.Request(List.of("a cat"), null, 1, 64, 48, 2, 3.5, null, 16, null, false, null, g, noise))) {
            assertEquals(DType.BF16, Tensors.dtype(a.finalLatents()), "latents stay in the model dtype");
            float[] x = Tensors.toFloats(a.finalLatents()), y = Tensors.toFloats(b.finalLatents());
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
        assertThrows(CancellationException.class, () -> pipe.generate(request(List.of("a cat"), 3.5, null, null, null), (i, n, s, ns) -> false));
        assertThrows(IllegalArgumentException.class, () -> new Sd3Pipeline.Request(List.of("x"), null, 1, 60, 64, 4, 0, null, 16, null, false, null, null, null));
        assertThrows(IllegalArgumentException.class, () -> new Sd3Pipeline.Request(List.of("x", "y"), List.of("a", "b", "c"), 1, 64, 64, 4, 0, null, 16,
                null, false, null, null, null));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> pipe.generate(request(List.of("x"), 0, null, null,
                List.of(new Sd3Pipeline.Direction("bad", "a", "b", 1, LayerSchedule.from(99), null, null, null)))));
        assertTrue(e.getMessage().contains("99"), e.getMessage());
    }
}
