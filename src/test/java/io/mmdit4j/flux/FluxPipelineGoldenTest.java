package io.mmdit4j.flux;

import io.mmdit4j.GoldenData;
import io.mmdit4j.golden.CaseResult;
import io.mmdit4j.golden.GoldenRunner;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Tensors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.stream.Collectors;

import static org.bytedeco.pytorch.global.torch.equal;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** FluxPipeline end to end against diffusers, seeds, batching, progress and cancellation. */
class FluxPipelineGoldenTest {
    private static FluxPipeline pipe;

    @BeforeAll
    static void load() {
        pipe = FluxPipeline.load(GoldenData.root().resolve("flux_pipeline/models/flux-tiny-schnell"), DType.F32, DeviceSpec.CPU);
    }

    @AfterAll
    static void close() {
        pipe.close();
    }

    @Test
    void allFluxPipelineCasesPass() {
        List<CaseResult> results = new GoldenRunner().run(List.of(GoldenData.root().resolve("flux_pipeline")), r -> { });
        List<String> bad = results.stream().filter(r -> r.status() != CaseResult.Status.PASS).map(CaseResult::line).collect(Collectors.toList());
        assertTrue(bad.isEmpty(), String.join("\n", bad));
        assertEquals(4, results.stream().map(CaseResult::caseName).distinct().count());
    }

    private static FluxPipeline.Request request(List<String> prompts, int n, long[] seeds, List<FluxPipeline.Direction> g) {
        return new FluxPipeline.Request(prompts, n, 64, 48, 2, 3.5, seeds, 32, g, null);
    }

    @Test
    void sameSeedSameImageAndEachImageOfABatchIsReproducibleAlone() {
        try (FluxPipeline.Result batch = pipe.generate(request(List.of("a cat", "a dog"), 1, new long[] {7, 8}, null));
             FluxPipeline.Result again = pipe.generate(request(List.of("a cat", "a dog"), 1, new long[] {7, 8}, null));
             FluxPipeline.Result alone = pipe.generate(request(List.of("a dog"), 1, new long[] {8}, null))) {
            assertArrayEquals(new long[] {2, 3, 48, 64}, Tensors.shape(batch.images()));
            assertTrue(equal(batch.images(), again.images()), "same seeds, same images");
            float[] a = Tensors.toFloats(batch.images().select(0, 1)), b = Tensors.toFloats(alone.images().select(0, 0));
            for (int i = 0; i < a.length; i++) assertEquals(b[i], a[i], 1e-5, "image 1 of the batch equals the same prompt and seed alone");
        }
    }

    @Test
    void imagesPerPromptAndGuidanceOnOneRow() {
        List<FluxPipeline.Direction> g = List.of(new FluxPipeline.Direction("vivid", "vivid colors", "washed out", 3.0,
                LayerSchedule.from(1), null, new double[] {0, 1}));
        try (FluxPipeline.Result plain = pipe.generate(request(List.of("a cat"), 2, new long[] {3, 4}, null));
             FluxPipeline.Result guided = pipe.generate(request(List.of("a cat"), 2, new long[] {3, 4}, g))) {
            assertEquals(2, plain.images().size(0));
            assertTrue(equal(plain.images().select(0, 0), guided.images().select(0, 0)), "row 0 is not guided");
            assertFalse(equal(plain.images().select(0, 1), guided.images().select(0, 1)), "row 1 is guided");
        }
    }

    @Test
    void progressIsReportedPerStepAndCanCancel() {
        List<Integer> steps = new ArrayList<>();
        try (FluxPipeline.Result r = pipe.generate(request(List.of("a cat"), 1, null, null), (i, n, sigma, ns) -> steps.add(i))) {
            assertEquals(List.of(0, 1), steps);
            assertEquals(2, r.timings().steps().length);
        }
        assertThrows(CancellationException.class, () -> pipe.generate(request(List.of("a cat"), 1, null, null), (i, n, s, ns) -> false));
    }

    @Test
    void badRequestsAreRejectedBeforeAnyWork() {
        assertThrows(IllegalArgumentException.class, () -> new FluxPipeline.Request(List.of("x"), 1, 60, 64, 4, 0, null, 32, null, null));
        assertThrows(IllegalArgumentException.class, () -> new FluxPipeline.Request(List.of(), 1, 64, 64, 4, 0, null, 32, null, null));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> pipe.generate(new FluxPipeline.Request(List.of("x"), 1, 64, 64, 1, 0, null, 600, null, null)));
        assertTrue(e.getMessage().contains("max_sequence_length"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> pipe.generate(request(List.of("x"), 1, null,
                List.of(new FluxPipeline.Direction("bad", "a", "b", 1, LayerSchedule.from(99), null, null)))));
        assertTrue(e.getMessage().contains("99"), e.getMessage());
    }

    @Test
    void theOriginalLayoutGivesTheSameImagesAsTheDiffusersFolder() {
        Path bfl = GoldenData.fluxModel("schnell").resolve("flux1-tiny-schnell.safetensors");
        try (FluxPipeline parts = FluxPipeline.loadParts(bfl, folder().resolve("vae"), folder(), DType.F32, DeviceSpec.CPU);
             FluxPipeline.Result a = parts.generate(request(List.of("a cat"), 1, new long[] {1}, null));
             FluxPipeline.Result b = pipe.generate(request(List.of("a cat"), 1, new long[] {1}, null))) {
            assertTrue(equal(a.images(), b.images()));
        }
    }

    @Test
    void incompatibleComponentFoldersAreRejectedWithTheirNames() {
        Path sd3 = GoldenData.root().resolve("sd3_pipeline/models/sd35-tiny-large");
        Path bfl = GoldenData.fluxModel("schnell").resolve("flux1-tiny-schnell.safetensors");
        RuntimeException wrong = assertThrows(RuntimeException.class,
                () -> FluxPipeline.loadParts(bfl, folder().resolve("vae"), sd3, DType.F32, DeviceSpec.CPU));
        assertTrue(wrong instanceof IllegalArgumentException || wrong instanceof io.mmdit4j.io.ModelFormatException, wrong.toString());
        assertTrue(wrong.getMessage().contains("sd35-tiny-large/tokenizer_2") || wrong.getMessage().contains("text_encoder_2"), wrong.getMessage());
        io.mmdit4j.io.ModelFormatException e = assertThrows(io.mmdit4j.io.ModelFormatException.class,
                () -> FluxPipeline.load(GoldenData.fluxModel("schnell"), DType.F32, DeviceSpec.CPU));
        assertTrue(e.getMessage().contains("model_index.json"), e.getMessage());
    }

    static Path folder() {
        return GoldenData.root().resolve("flux_pipeline/models/flux-tiny-schnell");
    }
}
