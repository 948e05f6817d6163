package io.mmdit4j.hidream;

import io.mmdit4j.guidance.CfgRows;
import io.mmdit4j.guidance.Direction;
import io.mmdit4j.models.ModelRegistry;
import io.mmdit4j.pipeline.GenerationRequest;
import io.mmdit4j.pipeline.GenerationResult;
import io.mmdit4j.pipeline.GenerationSettings;
import io.mmdit4j.pipeline.LoadOptions;
import io.mmdit4j.pipeline.MemoryEstimate;
import io.mmdit4j.pipeline.Pipeline;
import io.mmdit4j.pipeline.Pipelines;
import io.mmdit4j.pipeline.PreparedModel;
import io.mmdit4j.pipeline.StepNoise;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.sampling.Noise;
import io.mmdit4j.sampling.StepListener;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Chunked batches ({@code LoadOptions.maxBatch}) on HiDream: each image keeps its seeded FlowMatchLCM noise stream (fresh
 * noise every step), the given step noise rows of its own, and the batch-dependent sign of the reference's CFG-rows rule
 * ({@link CfgRows#REFERENCE_PAIR}) it had in the whole batch, so a chunked request makes the images of the single batch
 * (up to the float rounding of other batch sizes), and every chunk is exactly the generation of its own settings.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class HiDreamChunkingTest {
    @TempDir
    static Path home;
    private ModelRegistry registry;
    private Pipeline whole, chunked;

    @BeforeAll
    void load() throws IOException {
        registry = HiDreamDemo.registry(home);
        whole = Pipelines.load(HiDreamDemo.NAME, LoadOptions.builder().registry(registry).build());
        chunked = Pipelines.load(HiDreamDemo.NAME, LoadOptions.builder().registry(registry).maxBatch(1).build());
    }

    @AfterAll
    void close() {
        if (whole != null) whole.close();
        if (chunked != null) chunked.close();
    }

    private static final Direction GUIDED = Direction.preset("aesthetics").w(3).layers("0-");

    /** Generates {@code s} whole and chunked one image at a time; returns the largest pixel difference and checks each chunk bit for bit. */
    private double compare(GenerationSettings s) {
        List<String> steps = new ArrayList<>();
        try (GenerationResult a = whole.generate(s, StepListener.NONE, null);
             GenerationResult b = chunked.generate(s, st -> steps.add(st.chunk() + "/" + st.chunks()), null)) {
            assertEquals(s.images() * s.steps(), steps.size());
            assertEquals("0/" + s.images(), steps.get(0), "one image per chunk");
            assertEquals(s, b.settings(), "the result's settings are the whole request's");
            for (int i = 0; i < s.images(); i++) {
                try (GenerationResult c = whole.generate(s.chunk(i, i + 1, null), StepListener.NONE, null); PointerScope scope = new PointerScope()) {
                    assertArrayEquals(Tensors.toFloats(c.images()), Tensors.toFloats(b.images().narrow(0, i, 1)), "chunk " + i + " is its own request");
                }
            }
            return maxDiff(a.images(), b.images());
        }
    }

    private static double maxDiff(Tensor x, Tensor y) {
        float[] a = Tensors.toFloats(x), b = Tensors.toFloats(y);
        assertEquals(a.length, b.length);
        double worst = 0;
        for (int i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
        return worst;
    }

    @Test
    void seededStepNoiseAndTheReferencePairSignSurviveChunks() {
        // two prompts with CFG: the batch of 4 rows gets +w everywhere under the reference rule; a chunk's CFG pair would get −, +
        GenerationSettings cfg = whole.resolve(GenerationRequest.builder().prompt("a cat").prompt("a dog").seeds(11, 12).steps(3)
                .cfg(2.0, List.of("")).guide(GUIDED.rows(CfgRows.REFERENCE_PAIR)).build());
        assertTrue(compare(cfg) < 1e-3, "equal up to the rounding of other batch sizes");
        // two images without CFG: the reference rule gave image 0 −w, which its chunk of one image keeps
        GenerationSettings pair = whole.resolve(GenerationRequest.builder().prompt("a cat").prompt("a dog").seeds(5, 6).steps(3)
                .guide(GUIDED.rows(CfgRows.REFERENCE_PAIR)).build());
        assertEquals(CfgRows.REFERENCE_PAIR, pair.chunk(0, 1, null).guidance().get(0).rows());
        assertArrayEquals(new double[] {-1}, pair.chunk(0, 1, null).guidance().get(0).rowWeights(), "image 0's − made explicit");
        assertTrue(compare(pair) < 1e-3);
        // the test sees a lost sign: image 0 made with +w differs by far more than rounding
        GenerationSettings plus = whole.resolve(GenerationRequest.builder().prompt("a cat").seed(5).steps(3).guide(GUIDED.rows(CfgRows.REFERENCE_PAIR)).build());
        try (GenerationResult lost = whole.generate(plus, StepListener.NONE, null);
             GenerationResult right = chunked.generate(pair, StepListener.NONE, null); PointerScope scope = new PointerScope()) {
            assertTrue(maxDiff(lost.images(), right.images().narrow(0, 0, 1)) > 1e-2, "the sign matters on the demo");
        }
        // the principled default (cond-neg) and per-image row weights
        GenerationSettings rows = whole.resolve(GenerationRequest.builder().prompt("a fox").imagesPerPrompt(3).seed(21).steps(2)
                .cfg(2.0, List.of("")).guide(GUIDED.rowWeights(1, 0, 2)).build());
        assertTrue(compare(rows) < 1e-3);
    }

    @Test
    void givenStepNoiseIsSplitByImage() {
        GenerationRequest.Builder b = GenerationRequest.builder().prompt("a lighthouse").imagesPerPrompt(2).seeds(1, 2).steps(3);
        GenerationSettings probe = whole.resolve(b.build());
        long[] latent = whole.unwrap(HiDreamPipeline.class).latentShape(probe);
        long[] shape = {3, latent[0], latent[1], latent[2], latent[3]};
        try (Tensor noise = Noise.randn(shape, 99, DType.F32)) {
            GenerationSettings s = whole.resolve(b.option(new StepNoise(noise)).build());
            StepNoise second = s.chunk(1, 2, null).option(StepNoise.class);
            assertArrayEquals(new long[] {3, 1, latent[1], latent[2], latent[3]}, second.shape(), "image 1's rows");
            try (Tensor want = noise.select(0, 2).narrow(0, 1, 1).clone(); Tensor got = second.step(2)) {
                assertArrayEquals(Tensors.toFloats(want), Tensors.toFloats(got));
            }
            assertTrue(compare(s) < 1e-3);
        }
    }

    @Test
    void theMemoryPlanCountsTheTransformerAndChunksByMaxBatch() {
        PreparedModel m = Pipelines.prepare(HiDreamDemo.NAME, LoadOptions.builder().registry(registry).maxBatch(2).build());
        GenerationSettings s = m.resolve(GenerationRequest.builder().prompt("a fox").imagesPerPrompt(5).seed(1).build());
        MemoryEstimate e = m.memory(s);
        assertEquals(2, e.chunkImages());
        assertEquals(3, e.chunks());
        assertTrue(e.weightBytes() > 0, "the transformer, VAE and the four text encoders from their headers");
        GenerationSettings one = m.resolve(GenerationRequest.builder().prompt("a fox").seed(1).build());
        assertTrue(e.workingBytes() > m.memory(one).workingBytes(), "a chunk of 2 needs more than 1 image");
        PreparedModel offloaded = Pipelines.prepare(HiDreamDemo.NAME, LoadOptions.builder().registry(registry).offloadText(true).build());
        assertTrue(offloaded.memory(one).weightBytes() < m.memory(one).weightBytes(), "offloaded text encoders are not all resident at once");
    }
}
