package io.mmdit4j.hidream;

import io.mmdit4j.guidance.BlockConditioning;
import io.mmdit4j.guidance.CfgRows;
import io.mmdit4j.guidance.Direction;
import io.mmdit4j.guidance.GuidancePlan;
import io.mmdit4j.models.ModelRegistry;
import io.mmdit4j.pipeline.GenerationRequest;
import io.mmdit4j.pipeline.GenerationResult;
import io.mmdit4j.pipeline.GenerationSettings;
import io.mmdit4j.pipeline.LoadOptions;
import io.mmdit4j.pipeline.Pipeline;
import io.mmdit4j.pipeline.Pipelines;
import io.mmdit4j.pipeline.SampleSize;
import io.mmdit4j.runtime.Tensors;
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

import static org.bytedeco.pytorch.global.torch.equal;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The HiDream pipeline on the generated tiny demo: generation, the sign rule of the CFG rows (the principled default
 * and the reference's batch-of-2 rule), the final-layer rule, {@code w = 0} bit-identical to no guidance, the
 * area-preserving resize and text offloading.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class HiDreamPipelineTest {
    @TempDir
    static Path home;
    private ModelRegistry registry;
    private Pipeline pipe;

    @BeforeAll
    void load() throws IOException {
        registry = HiDreamDemo.registry(home);
        pipe = Pipelines.load(HiDreamDemo.NAME, LoadOptions.builder().registry(registry).build());
    }

    @AfterAll
    void close() {
        if (pipe != null) pipe.close();
    }

    private static GenerationRequest.Builder request() {
        return GenerationRequest.builder().prompt("a red fox in the snow").seed(7).steps(2);
    }

    @Test
    void generatesImagesOfTheDescriptorsSize() {
        try (GenerationResult r = pipe.generate(request().build())) {
            assertArrayEquals(new long[] {1, 3, 64, 64}, Tensors.shape(r.images()));
            for (float v : Tensors.toFloats(r.images())) assertTrue(v >= 0f && v <= 1f, "pixels in [0, 1], got " + v);
            assertEquals("hidream", r.settings().family());
        }
    }

    @Test
    void zeroWeightIsBitIdenticalToNoGuidance() {
        try (GenerationResult plain = pipe.generate(request().build());
             GenerationResult zero = pipe.generate(request().guide(Direction.preset("aesthetics").w(0)).build());
             GenerationResult some = pipe.generate(request().guide(Direction.preset("aesthetics").w(3)).build())) {
            assertTrue(equal(plain.latents(), zero.latents()), "w = 0 must give the plain latents bit for bit");
            assertFalse(equal(plain.latents(), some.latents()), "w = 3 changes them");
        }
    }

    /** Each transformer row's offset in the block (−1: the final layer) over {@code w·delta}: its sign times its row weight. */
    private double[] signs(GenerationRequest r, int block) {
        GenerationSettings s = pipe.resolve(r);
        Direction d = s.guidance().get(0);
        List<double[]> seen = new ArrayList<>();
        try (PointerScope scope = new PointerScope()) {
            Tensor delta = pipe.unwrap(HiDreamPipeline.class).delta(d.pos(), d.neg()).mul(new org.bytedeco.pytorch.Scalar(d.w()));
            try (GenerationResult ignored = pipe.generate(s, StepListener.NONE, (step, cond) -> {
                if (step == 0) seen.add(coefficients(cond, block, delta));
            })) {
                return seen.get(0);
            }
        }
    }

    private static double[] coefficients(BlockConditioning cond, int block, Tensor wDelta) {
        try (PointerScope scope = new PointerScope()) {
            Tensor offset = (block < 0 ? cond.finalVector() : cond.vector(block)).sub(cond.temb());
            double norm = wDelta.mul(wDelta).sum().item_double();
            double[] out = new double[(int) offset.size(0)];
            for (int i = 0; i < out.length; i++) out[i] = Math.round(offset.select(0, i).mul(wDelta.select(0, 0)).sum().item_double() / norm);
            return out;
        }
    }

    @Test
    void cfgRowsRuleIsCondPlusUncondMinusByDefaultAndTheReferenceRuleOnRequest() {
        Direction d = Direction.preset("aesthetics").w(2);
        // one prompt with CFG: the batch [uncond, cond]; default cond-neg → −, + (the reference gives the same here)
        assertArrayEquals(new double[] {-1, 1}, signs(request().cfg(3.0, List.of("")).guide(d).build(), 2));
        assertArrayEquals(new double[] {-1, 1}, signs(request().cfg(3.0, List.of("")).guide(d.rows(CfgRows.REFERENCE_PAIR)).build(), 2));
        // two prompts without CFG: the principled rule guides both +, the reference rule gives the pair −, +
        GenerationRequest.Builder two = GenerationRequest.builder().prompt("a cat").prompt("a dog").seed(3).steps(1);
        assertArrayEquals(new double[] {1, 1}, signs(two.guide(d).build(), 2));
        two = GenerationRequest.builder().prompt("a cat").prompt("a dog").seed(3).steps(1);
        assertArrayEquals(new double[] {-1, 1}, signs(two.guide(d.rows(CfgRows.REFERENCE_PAIR)).build(), 2));
        // two prompts with CFG (batch 4): default −, −, +, +; the reference rule + on every row
        GenerationRequest.Builder four = GenerationRequest.builder().prompt("a cat").prompt("a dog").seed(3).steps(1).cfg(3.0, List.of(""));
        assertArrayEquals(new double[] {-1, -1, 1, 1}, signs(four.guide(d).build(), 2));
        four = GenerationRequest.builder().prompt("a cat").prompt("a dog").seed(3).steps(1).cfg(3.0, List.of(""));
        assertArrayEquals(new double[] {1, 1, 1, 1}, signs(four.guide(d.rows(CfgRows.REFERENCE_PAIR)).build(), 2));
        assertEquals(CfgRows.COND_NEG, pipe.resolve(request().guide(Direction.preset("aesthetics")).build()).guidance().get(0).rows(),
                "HiDream's default CFG rows");
    }

    @Test
    void referencePairImageRecordsRemakeItAlone() {
        Direction d = Direction.preset("aesthetics").w(2).rows(CfgRows.REFERENCE_PAIR).label("a");
        GenerationSettings two = pipe.resolve(GenerationRequest.builder().prompt("a cat").prompt("a dog").seed(3).steps(1).guide(d).build());
        assertEquals(-2.0, two.forImage(0).guidance().get(0).w(), "image 0 got −w in the pair: its record says so");
        assertEquals(2.0, two.forImage(1).guidance().get(0).w());
        Direction alone = GuidancePlan.alone(two.guidance().get(0), 0, 4, false);
        assertEquals(CfgRows.BOTH, alone.rows(), "a batch of 4 got + everywhere: made alone that is 'both'");
    }

    @Test
    void finalLayerIsAlwaysGuidedAlsoWhenTheScheduleSelectsNoBlock() {
        GenerationRequest past = request().guide(Direction.preset("aesthetics").w(3).layers("9-")).build();
        GenerationSettings s = pipe.resolve(past);
        assertTrue(pipe.warnings(s).get(0).contains("selects no block"), pipe.warnings(s).toString());
        boolean[] checked = {false};
        try (GenerationResult guided = pipe.generate(s, StepListener.NONE, (step, cond) -> {
            for (int i = 0; i < cond.numBlocks(); i++) assertSame(cond.temb(), cond.vector(i), "block " + i + " is not guided");
            assertNotSame(cond.temb(), cond.finalVector(), "the final layer is guided (HiDream's rule)");
            checked[0] = true;
        }); GenerationResult plain = pipe.generate(request().build())) {
            assertTrue(checked[0]);
            assertFalse(equal(plain.latents(), guided.latents()), "guiding the final layer alone changes the image");
        }
        assertArrayEquals(new double[] {1}, signs(request().guide(Direction.preset("aesthetics").w(3).layers("2-3")).build(), -1),
                "the final layer gets w·delta also when the schedule ends before it");
    }

    @Test
    void requestSizesAreResizedToTheSampleArea() {
        assertArrayEquals(new int[] {48, 64}, new SampleSize(64).resize(32, 48), "the golden case's 32x48 → 48x64 (W, H)");
        assertArrayEquals(new int[] {1024, 1024}, new SampleSize(1024).resize(1024, 1024));
        assertArrayEquals(new int[] {1168, 880}, new SampleSize(1024).resize(1024, 768));
        try (GenerationResult r = pipe.generate(request().size(32, 48).build())) {
            assertArrayEquals(new long[] {1, 3, 64, 48}, Tensors.shape(r.images()), "[B, 3, H, W] of the resized 48x64");
        }
    }

    @Test
    void offloadedTextEncodersGiveTheSameImageAndAreReleased() throws IOException {
        try (Pipeline off = Pipelines.load(HiDreamDemo.NAME, LoadOptions.builder().registry(registry).offloadText(true).build());
             GenerationResult a = off.generate(request().guide(Direction.preset("aesthetics")).build());
             GenerationResult b = pipe.generate(request().guide(Direction.preset("aesthetics")).build())) {
            assertTrue(equal(a.latents(), b.latents()), "offloading changes nothing in the numbers");
            HiDreamPipeline h = off.unwrap(HiDreamPipeline.class);
            assertTrue(h.transformerPart().isLoaded(), "the transformer stays until the next text phase");
            h.textEncoders().parts().forEach(p -> assertFalse(p.isLoaded(), p.name() + " was released"));
            try (GenerationResult again = off.generate(request().build())) {
                assertEquals(2, h.transformerPart().loads(), "released for the second text phase, loaded again to denoise");
            }
        }
    }
}
