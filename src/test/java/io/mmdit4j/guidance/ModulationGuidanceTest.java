package io.mmdit4j.guidance;

import io.mmdit4j.GoldenData;
import io.mmdit4j.flux.FluxInputs;
import io.mmdit4j.flux.FluxTransformer;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.bytedeco.pytorch.global.torch.equal;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Modulation guidance as a per-block, per-row, per-step argument of the FLUX forward. */
class ModulationGuidanceTest {
    private static FluxTransformer model;
    private static SafetensorsFile in;

    @BeforeAll
    static void load() {
        model = FluxTransformer.load(GoldenData.fluxModel("dev").resolve("transformer"), DType.F32);
        in = SafetensorsFile.open(GoldenData.fluxCase("dev_modg_w3_s1").resolve("inputs.safetensors"));
    }

    @AfterAll
    static void close() {
        model.close();
        in.close();
    }

    private static FluxInputs inputs() {
        return new FluxInputs(in.load("hidden_states"), in.load("encoder_hidden_states"), in.load("pooled_projections"),
                in.load("timestep"), in.load("guidance"), in.load("img_ids"), in.load("txt_ids"));
    }

    private static Tensor delta() {
        return model.guidanceDelta(in.load("pooled_pos"), in.load("pooled_neg"));
    }

    @Test
    void weightZeroIsBitIdenticalToNoGuidance() {
        try (PointerScope s = new PointerScope();
             ModulationGuidance zero = ModulationGuidance.builder().term(delta(), 0.0, LayerSchedule.all()).build()) {
            Tensor plain = model.forward(inputs());
            Tensor guided = model.forward(inputs(), zero, 0);
            assertTrue(equal(plain, guided), "w = 0 must not change a single bit");
        }
    }

    @Test
    void guidingRowZeroLeavesRowOneBitIdentical() {
        try (PointerScope s = new PointerScope();
             ModulationGuidance rowZero = ModulationGuidance.builder()
                     .add(new GuidanceTerm("row0", delta(), 3.0, LayerSchedule.from(1), StepWindow.all(), new double[] {1, 0}))
                     .build()) {
            Tensor plain = model.forward(inputs());
            Tensor guided = model.forward(inputs(), rowZero, 0);
            assertTrue(equal(plain.select(0, 1), guided.select(0, 1)), "unguided row 1 must be bit-identical");
            assertFalse(equal(plain.select(0, 0), guided.select(0, 0)), "guided row 0 must change");
        }
    }

    @Test
    void perRowGuidanceEqualsTheSameGuidanceAppliedToTheWholeBatch() {
        try (PointerScope s = new PointerScope();
             ModulationGuidance all = ModulationGuidance.builder().term(delta(), 3.0, LayerSchedule.from(1)).build();
             ModulationGuidance rowZero = ModulationGuidance.builder()
                     .add(new GuidanceTerm(null, delta(), 3.0, LayerSchedule.from(1), null, new double[] {1, 0})).build()) {
            Tensor whole = model.forward(inputs(), all, 0);
            Tensor row = model.forward(inputs(), rowZero, 0);
            assertTrue(equal(whole.select(0, 0), row.select(0, 0)), "row 0 guided alone equals row 0 of a fully guided batch");
        }
    }

    @Test
    void stepWindowTurnsGuidanceOffOutsideItsSteps() {
        try (PointerScope s = new PointerScope();
             ModulationGuidance late = ModulationGuidance.builder()
                     .add(new GuidanceTerm("late", delta(), 3.0, LayerSchedule.all(), StepWindow.parse("2-"), null)).build()) {
            Tensor plain = model.forward(inputs());
            assertTrue(equal(plain, model.forward(inputs(), late, 1)), "step 1 is outside 2-");
            assertFalse(equal(plain, model.forward(inputs(), late, 2)), "step 2 is inside 2-");
        }
    }

    @Test
    void blocksWithTheSameWeightShareOneVectorAndTheFinalNormStaysPlain() {
        List<int[]> seen = new ArrayList<>();
        try (PointerScope s = new PointerScope();
             ModulationGuidance s4 = ModulationGuidance.builder().term(delta(), 1.0, LayerSchedule.parse("1-2:3,3-4:1")).build()) {
            model.forward(inputs(), s4, 0, null, (step, c) -> {
                assertEquals(5, c.numBlocks());
                assertSame(c.temb(), c.vector(0), "block 0 is unguided and gets temb itself");
                assertSame(c.vector(1), c.vector(2), "blocks with equal weights share one tensor");
                assertSame(c.activated(3), c.activated(4));
                assertNotSame(c.vector(2), c.vector(3));
                assertSame(c.temb(), c.finalVector(), "norm_out keeps the plain temb");
                seen.add(new int[] {c.distinctVectors()});
            });
        }
        assertEquals(1, seen.size(), "the observer sees the forward's conditioning once");
        assertEquals(3, seen.get(0)[0], "plain + w=3 + w=1");
    }

    @Test
    void guidedVectorIsTembPlusWeightedDelta() {
        try (PointerScope s = new PointerScope()) {
            Tensor d = delta();
            try (ModulationGuidance g = ModulationGuidance.builder().term(Tensors.keep(d.clone()), 2.5, LayerSchedule.layer(3))
                    .guideFinalNorm(true).build()) {
                model.forward(inputs(), g, 0, null, (step, c) -> {
                    float[] temb = Tensors.toFloats(c.temb());
                    float[] guided = Tensors.toFloats(c.vector(3));
                    float[] delta = Tensors.toFloats(d);
                    for (int i = 0; i < temb.length; i++) {
                        assertEquals(temb[i] + (float) (2.5f * delta[i]), guided[i], 0f, "element " + i);
                    }
                    assertSame(c.vector(3), c.finalVector(), "guideFinalNorm gives the final norm w·delta (the vector of block 3's coefficients)");
                    assertFalse(c.isGuided(4));
                    assertNotSame(c.temb(), c.finalVector(), "the final norm is guided although block 4 is not (HiDream's rule)");
                });
            }
        }
    }

    @Test
    void badGuidanceInputsGiveClearErrors() {
        try (PointerScope s = new PointerScope()) {
            Tensor wrongWidth = Tensors.fromFloats(new float[5], 1, 5);
            ModulationGuidance g = ModulationGuidance.builder().term(wrongWidth, 1.0, LayerSchedule.all()).build();
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> model.forward(inputs(), g, 0));
            assertTrue(e.getMessage().contains("[1, 5]") && e.getMessage().contains("[1, 32]"), e.getMessage());

            ModulationGuidance rows = ModulationGuidance.builder()
                    .add(new GuidanceTerm("r", delta(), 1.0, null, null, new double[] {1, 1, 1})).build();
            e = assertThrows(IllegalArgumentException.class, () -> model.forward(inputs(), rows, 0));
            assertTrue(e.getMessage().contains("3 row weights for a batch of 2"), e.getMessage());

            ModulationGuidance outside = ModulationGuidance.builder().term(delta(), 1.0, LayerSchedule.interval(2, 9)).build();
            e = assertThrows(IllegalArgumentException.class, () -> model.forward(inputs(), outside, 0));
            assertTrue(e.getMessage().contains("9"), e.getMessage());

            e = assertThrows(IllegalArgumentException.class, () -> model.guidanceDelta(wrongWidth, wrongWidth));
            assertTrue(e.getMessage().contains("[1, 5]") && e.getMessage().contains("24"), e.getMessage());
        }
    }
}
