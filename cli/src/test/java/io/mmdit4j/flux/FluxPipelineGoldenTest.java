package io.mmdit4j.flux;

import io.mmdit4j.GoldenData;
import io.mmdit4j.golden.CaseResult;
import io.mmdit4j.golden.GoldenRunner;
import io.mmdit4j.guidance.Direction;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.pipeline.GenerationRequest;
import io.mmdit4j.pipeline.GenerationResult;
import io.mmdit4j.pipeline.InvalidRequestException;
import io.mmdit4j.pipeline.LoadOptions;
import io.mmdit4j.pipeline.Pipeline;
import io.mmdit4j.pipeline.Pipelines;
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

/** FLUX through the generation API end to end against diffusers: seeds, batching, progress and cancellation. */
class FluxPipelineGoldenTest {
    private static Pipeline pipe;

    @BeforeAll
    static void load() {
        pipe = Pipelines.load(folder(), LoadOptions.defaults());
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

    private static GenerationRequest request(List<String> prompts, int n, long[] seeds, Direction g) {
        GenerationRequest.Builder b = GenerationRequest.builder().prompts(prompts).imagesPerPrompt(n).size(64, 48).steps(2).maxSequenceLength(32);
        if (seeds != null) b.seeds(seeds);
        if (g != null) b.guide(g);
        return b.build();
    }

    @Test
    void sameSeedSameImageAndEachImageOfABatchIsReproducibleAlone() {
        try (GenerationResult batch = pipe.generate(request(List.of("a cat", "a dog"), 1, new long[] {7, 8}, null));
             GenerationResult again = pipe.generate(request(List.of("a cat", "a dog"), 1, new long[] {7, 8}, null));
             GenerationResult alone = pipe.generate(request(List.of("a dog"), 1, new long[] {8}, null))) {
            assertArrayEquals(new long[] {2, 3, 48, 64}, Tensors.shape(batch.images()));
            assertTrue(equal(batch.images(), again.images()), "same seeds, same images");
            float[] a = Tensors.toFloats(batch.images().select(0, 1)), b = Tensors.toFloats(alone.images().select(0, 0));
            for (int i = 0; i < a.length; i++) assertEquals(b[i], a[i], 1e-5, "image 1 of the batch equals the same prompt and seed alone");
        }
    }

    @Test
    void imagesPerPromptAndGuidanceOnOneRow() {
        Direction g = Direction.of("vivid colors", "washed out").label("vivid").w(3.0).layers(LayerSchedule.from(1)).rowWeights(0, 1);
        try (GenerationResult plain = pipe.generate(request(List.of("a cat"), 2, new long[] {3, 4}, null));
             GenerationResult guided = pipe.generate(request(List.of("a cat"), 2, new long[] {3, 4}, g))) {
            assertEquals(2, plain.images().size(0));
            assertTrue(equal(plain.images().select(0, 0), guided.images().select(0, 0)), "row 0 is not guided");
            assertFalse(equal(plain.images().select(0, 1), guided.images().select(0, 1)), "row 1 is guided");
            assertEquals(0, guided.settings().forImage(0).guidance().size(), "image 0's own settings carry no guidance");
            assertEquals(3.0, guided.settings().forImage(1).guidance().get(0).w(), "image 1's carry w 3");
        }
    }

    @Test
    void progressIsReportedPerStepAndCanCancel() {
        List<Integer> steps = new ArrayList<>();
        try (GenerationResult r = pipe.generate(request(List.of("a cat"), 1, null, null), step -> steps.add(step.index()))) {
            assertEquals(List.of(0, 1), steps);
            assertEquals(2, r.timings().steps().length);
        }
        assertThrows(CancellationException.class, () -> pipe.generate(request(List.of("a cat"), 1, null, null), step -> false));
    }

    @Test
    void badRequestsAreRejectedBeforeAnyWork() {
        assertThrows(InvalidRequestException.class, () -> GenerationRequest.builder().prompt("x").size(60, 64).build());
        assertThrows(InvalidRequestException.class, () -> GenerationRequest.builder().build());
        IllegalArgumentException e = assertThrows(InvalidRequestException.class,
                () -> pipe.generate(GenerationRequest.builder().prompt("x").size(64, 64).steps(1).maxSequenceLength(600).build()));
        assertTrue(e.getMessage().contains("512"), e.getMessage());
        e = assertThrows(InvalidRequestException.class, () -> pipe.generate(request(List.of("x"), 1, null,
                Direction.of("a", "b").label("bad").w(1).layers(LayerSchedule.interval(2, 99)))));
        assertTrue(e.getMessage().contains("99") && e.getMessage().contains("bad"), e.getMessage());
    }

    @Test
    void theOriginalLayoutGivesTheSameImagesAsTheDiffusersFolder() {
        Path bfl = GoldenData.fluxModel("schnell").resolve("flux1-tiny-schnell.safetensors");
        try (Pipeline parts = Pipelines.load(bfl, LoadOptions.builder().vae(folder().resolve("vae")).textEncoders(folder()).build());
             GenerationResult a = parts.generate(request(List.of("a cat"), 1, new long[] {1}, null));
             GenerationResult b = pipe.generate(request(List.of("a cat"), 1, new long[] {1}, null))) {
            assertEquals("flux", parts.family().name());
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
        InvalidRequestException noParts = assertThrows(InvalidRequestException.class, () -> Pipelines.load(bfl, LoadOptions.defaults()));
        assertTrue(noParts.getMessage().contains("--vae") && noParts.getMessage().contains("--text-encoders"), noParts.getMessage());
    }

    static Path folder() {
        return GoldenData.root().resolve("flux_pipeline/models/flux-tiny-schnell");
    }
}
