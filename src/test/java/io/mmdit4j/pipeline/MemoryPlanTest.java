package io.mmdit4j.pipeline;

import io.mmdit4j.GoldenData;
import io.mmdit4j.guidance.Direction;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.sampling.StepListener;
import org.bytedeco.javacpp.PointerScope;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Issue item 3 through the API every caller shares: a generation is estimated before any work and refused when it cannot
 * fit, and large requests run in chunks whose images are those of the single batch.
 */
class MemoryPlanTest {
    private static final Path MODEL = GoldenData.root().resolve("flux_pipeline/models/flux-tiny-dev");

    private static GenerationRequest.Builder small() {
        return GenerationRequest.builder().prompt("a fox").size(32, 32).steps(2).maxSequenceLength(16);
    }

    @Test
    void requestsThatCannotFitAreRefusedBeforeAnyWorkWithWhatTheyNeed() {
        PreparedModel budget = Pipelines.prepare(MODEL.toString(), LoadOptions.builder().memoryBudget(1L << 30).build());
        budget.resolve(small().build()); // fits
        InsufficientMemoryException e = assertThrows(InsufficientMemoryException.class, () -> budget.resolve(small().size(4096, 4096).build()));
        assertTrue(e.getMessage().contains("needs about") && e.getMessage().contains("1.1 GB is the budget") && e.getMessage().contains("--ignore-memory-check"),
                e.getMessage());
        assertTrue(e.estimate().workingBytes() > e.estimate().resultBytes(), "the VAE decode at 4096x4096 dominates: " + e.estimate().describe());
        PreparedModel unchecked = Pipelines.prepare(MODEL.toString(), LoadOptions.builder().memoryBudget(1L << 30).checkMemory(false).build());
        unchecked.resolve(small().size(4096, 4096).build());

        // the loaded pipeline checks again (weights loaded: working set and results only), before any step
        try (Pipeline p = Pipelines.load(MODEL.toString(), LoadOptions.builder().memoryBudget(100L << 20).build())) {
            List<Integer> steps = new ArrayList<>();
            GenerationSettings s = unchecked.resolve(small().imagesPerPrompt(200).build());
            assertThrows(InsufficientMemoryException.class, () -> p.generate(s, st -> steps.add(st.index()), null));
            assertTrue(steps.isEmpty(), "nothing ran");
        }
    }

    @Test
    void theEstimateFollowsTheRequestAndChunksKeepTheWorkingSetFlat() {
        PreparedModel m = Pipelines.prepare(MODEL.toString(), LoadOptions.defaults());
        MemoryEstimate one = m.memory(m.resolve(small().build()));
        MemoryEstimate many = m.memory(m.resolve(small().imagesPerPrompt(200).build()));
        assertEquals(1, one.chunks());
        assertEquals(LoadOptions.DEFAULT_MAX_BATCH, many.chunkImages());
        assertEquals(25, many.chunks(), "200 images in chunks of 8");
        assertEquals(200 * one.resultBytes(), many.resultBytes(), "results grow with the images");
        assertTrue(many.workingBytes() <= LoadOptions.DEFAULT_MAX_BATCH * one.workingBytes(), "the working set is one chunk's");
        assertTrue(one.weightBytes() > 0, "weights from the headers");
        MemoryEstimate large = m.memory(m.resolve(small().size(2048, 2048).imagesPerPrompt(8).build()));
        assertTrue(large.chunkImages() < 8 && large.workingBytes() <= MemoryPlanner.CHUNK_TARGET_BYTES, large.describe());
    }

    @Test
    void chunksGiveTheImagesOfOneBatchInRequestOrder() throws IOException {
        Direction rowWise = Direction.preset("aesthetics").w(3).layers("1-").rowWeights(1, 0, 2, 0, 1, 0.5);
        GenerationRequest r = small().prompts(List.of("a fox", "a lighthouse")).imagesPerPrompt(3).seed(7).guide(rowWise).build();
        try (Pipeline whole = Pipelines.load(MODEL.toString(), LoadOptions.defaults());
             Pipeline chunked = Pipelines.load(MODEL.toString(), LoadOptions.builder().maxBatch(2).build())) {
            GenerationSettings s = whole.resolve(r);
            List<String> steps = new ArrayList<>();
            try (GenerationResult a = whole.generate(s, StepListener.NONE, null);
                 GenerationResult b = chunked.generate(s, st -> steps.add(st.chunk() + "/" + st.chunks() + ":" + st.index()), null)) {
                assertEquals(List.of("0/4:0", "0/4:1", "1/4:0", "1/4:1", "2/4:0", "2/4:1", "3/4:0", "3/4:1"), steps,
                        "3 images per prompt in chunks of 2: [0,2) [2,3) of each prompt");
                assertEquals(s, b.settings(), "the result's settings are the whole request's");
                assertArrayEquals(Tensors.shape(a.images()), Tensors.shape(b.images()));
                assertArrayEquals(Tensors.shape(a.latents()), Tensors.shape(b.latents()));
                assertEquals(2, b.timings().steps().length);
                float[] x = Tensors.toFloats(a.images()), y = Tensors.toFloats(b.images());
                double worst = 0;
                for (int i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
                assertTrue(worst < 1e-3, "equal up to the float rounding of other batch sizes: " + worst);
                for (int i = 0; i < s.images(); i++) assertEquals(s.metadata(i), b.settings().metadata(i), "image " + i + "'s record");
                // each chunk is exactly the generation of its own settings
                GenerationSettings third = s.chunk(3, 5, null);
                assertEquals(List.of("a lighthouse"), third.prompts());
                assertArrayEquals(new double[] {0, 1}, third.guidance().get(0).rowWeights());
                try (GenerationResult c = whole.generate(third, StepListener.NONE, null);
                     PointerScope scope = new PointerScope()) {
                    assertArrayEquals(Tensors.toFloats(c.images()), Tensors.toFloats(b.images().narrow(0, 3, 2)));
                }
            }
        }
    }
}
