package io.mmdit4j.guidance;

import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.bytedeco.pytorch.global.torch.createCPUGenerator;
import static org.bytedeco.pytorch.global.torch.randn;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link ModulationGuidance#stack}: the plan of a forward whose rows belong to requests at different steps gives every row
 * exactly the conditioning its own plan gives it at its own step (step windows resolved per part, per-row deltas padded).
 */
class ModulationGuidanceStackTest {
    private static final int D = 8, BLOCKS = 5;

    private static Tensor random(long seed, long... shape) {
        return randn(shape, new org.bytedeco.pytorch.GeneratorOptional(createCPUGenerator(seed)), new TensorOptions(ScalarType.Float));
    }

    @Test
    void everyRowGetsWhatItsOwnPlanGivesItAtItsOwnStep() {
        try (PointerScope scope = new PointerScope()) {
            Tensor temb = random(1, 4, D); // rows: part a (1 row), part b (2 rows), part c (1 row, unguided)
            ModulationGuidance a = ModulationGuidance.builder()
                    .add(new GuidanceTerm("a", Tensors.keep(random(2, 1, D)), 3, LayerSchedule.parse("1-"), StepWindow.parse("0-1"), null)).build();
            ModulationGuidance b = ModulationGuidance.builder()
                    .add(new GuidanceTerm("b1", Tensors.keep(random(3, 1, D)), -2, LayerSchedule.parse("0,2"), StepWindow.parse("2-"), new double[] {1, 0.5}))
                    .add(new GuidanceTerm("b2", Tensors.keep(random(4, 2, D)), 1.5, LayerSchedule.all(), StepWindow.all(), null)).build();
            ModulationGuidance c = ModulationGuidance.none();
            for (int[] steps : new int[][] {{0, 0, 0}, {1, 3, 2}, {2, 2, 5}, {5, 1, 0}}) {
                try (ModulationGuidance stacked = ModulationGuidance.stack(List.of(a, b, c), new int[] {1, 2, 1}, steps)) {
                    BlockConditioning all = stacked.resolve(temb, 99, BLOCKS); // any step: the windows are resolved
                    BlockConditioning ca = a.resolve(temb.narrow(0, 0, 1), steps[0], BLOCKS);
                    BlockConditioning cb = b.resolve(temb.narrow(0, 1, 2), steps[1], BLOCKS);
                    for (int l = 0; l < BLOCKS; l++) {
                        String at = "steps " + java.util.Arrays.toString(steps) + ", block " + l;
                        assertArrayEquals(Tensors.toFloats(ca.vector(l)), Tensors.toFloats(all.vector(l).narrow(0, 0, 1)), at + ", part a");
                        assertArrayEquals(Tensors.toFloats(cb.vector(l)), Tensors.toFloats(all.vector(l).narrow(0, 1, 2)), at + ", part b");
                        assertArrayEquals(Tensors.toFloats(temb.narrow(0, 3, 1)), Tensors.toFloats(all.vector(l).narrow(0, 3, 1)), at + ", part c");
                    }
                }
            }
            // nothing guided at these steps: every block keeps temb itself (w = 0 stays bit-identical)
            try (ModulationGuidance stacked = ModulationGuidance.stack(List.of(a, c), new int[] {1, 1}, new int[] {4, 0})) {
                BlockConditioning all = stacked.resolve(temb.narrow(0, 0, 2), 0, BLOCKS);
                for (int l = 0; l < BLOCKS; l++) assertTrue(!all.isGuided(l), "block " + l);
            }
            a.close();
            b.close();
        }
    }

    @Test
    void theStackerReusesAPlanWhileItsPartsAndActiveWindowsStayTheSame() {
        try (PointerScope scope = new PointerScope(); ModulationGuidance.Stacker stacker = new ModulationGuidance.Stacker()) {
            ModulationGuidance a = ModulationGuidance.builder()
                    .add(new GuidanceTerm("a", Tensors.keep(random(2, 1, D)), 3, LayerSchedule.parse("1-"), StepWindow.parse("0-1"), null)).build();
            ModulationGuidance b = ModulationGuidance.builder().term(Tensors.keep(random(3, 1, D)), 1, LayerSchedule.all()).build();
            ModulationGuidance first = stacker.stack(List.of(a, b), new int[] {1, 1}, new int[] {0, 5});
            assertTrue(first == stacker.stack(List.of(a, b), new int[] {1, 1}, new int[] {1, 9}), "same parts, same active windows");
            ModulationGuidance outside = stacker.stack(List.of(a, b), new int[] {1, 1}, new int[] {2, 9});
            assertTrue(first != outside, "a's window ended");
            assertEquals(0, outside.terms().get(0).rowWeights()[0]);
            assertTrue(outside != stacker.stack(List.of(b, a), new int[] {1, 1}, new int[] {9, 2}), "other parts");
            a.close();
            b.close();
        }
    }

    @Test
    void partsMustAgreeOnNormControlAndRowCounts() {
        try (PointerScope scope = new PointerScope()) {
            ModulationGuidance plain = ModulationGuidance.builder().term(Tensors.keep(random(2, 1, D)), 1, LayerSchedule.all()).build();
            ModulationGuidance normed = ModulationGuidance.builder().normControl(NormControl.KEEP_TEMB_NORM)
                    .term(Tensors.keep(random(3, 1, D)), 1, LayerSchedule.all()).build();
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> ModulationGuidance.stack(List.of(plain, normed), new int[] {1, 1}, new int[] {0, 0}));
            assertTrue(e.getMessage().contains("norm control"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> ModulationGuidance.stack(List.of(plain), new int[] {1, 1}, new int[] {0}));
            ModulationGuidance rows = ModulationGuidance.builder()
                    .add(new GuidanceTerm("r", Tensors.keep(random(4, 1, D)), 1, LayerSchedule.all(), StepWindow.all(), new double[] {1, 0})).build();
            assertThrows(IllegalArgumentException.class, () -> ModulationGuidance.stack(List.of(rows), new int[] {3}, new int[] {0}));
            try (ModulationGuidance two = ModulationGuidance.stack(List.of(rows), new int[] {2}, new int[] {0})) {
                assertEquals(1, two.terms().size());
            }
            plain.close();
            normed.close();
            rows.close();
        }
    }
}
