package io.mmdit4j.nn;

import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.OpCounter;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;

import static org.bytedeco.pytorch.global.torch.cat;
import static org.bytedeco.pytorch.global.torch.createCPUGenerator;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link Linear#forwardConcat}: the output projection of a FLUX single block applied to [attention, MLP] without
 * building the concatenation. Same values as {@code forward(cat(a, b))} up to fp32 summation order, same FLOPs.
 */
class LinearConcatTest {

    private static Tensor randn(GeneratorOptional g, long... shape) {
        return org.bytedeco.pytorch.global.torch.randn(shape, g, new TensorOptions(ScalarType.Float));
    }

    @Test
    void matchesTheLinearOfTheConcatenation() {
        try (PointerScope scope = new PointerScope()) {
            GeneratorOptional g = new GeneratorOptional(createCPUGenerator(7));
            for (boolean bias : new boolean[] {true, false}) {
                Linear proj = new Linear(randn(g, 24, 40), bias ? randn(g, 24) : null); // in 40 = 8 + 32
                Tensor a = randn(g, 2, 5, 8), b = randn(g, 2, 5, 32);                 // [B,S,ka], [B,S,kb]
                Tensor expected = proj.forward(cat(new TensorVector(a, b), 2));
                Tensor got = proj.forwardConcat(a, b);
                assertArrayEquals(Tensors.shape(expected), Tensors.shape(got));
                float[] e = Tensors.toFloats(expected), o = Tensors.toFloats(got);
                double maxAbs = 0, maxVal = 0;
                for (int i = 0; i < e.length; i++) {
                    maxAbs = Math.max(maxAbs, Math.abs(e[i] - o[i]));
                    maxVal = Math.max(maxVal, Math.abs(e[i]));
                }
                assertTrue(maxVal > 1, "a non-trivial output");
                assertTrue(maxAbs <= 1e-5 * maxVal, "bias " + bias + ": max |diff| " + maxAbs + " of values up to " + maxVal);
            }
        }
    }

    @Test
    void recordsTheSameFlopsAsOneLinear() {
        try (PointerScope scope = new PointerScope()) {
            GeneratorOptional g = new GeneratorOptional(createCPUGenerator(1));
            Linear proj = new Linear(randn(g, 16, 48), randn(g, 16));
            Tensor a = randn(g, 1, 6, 16), b = randn(g, 1, 6, 32);
            try (OpCounter.Recording r = OpCounter.record()) {
                proj.forwardConcat(a, b);
                assertEquals(2, r.linears().size(), "two GEMMs, one per column block of the weight");
                assertEquals(2.0 * 6 * 48 * 16, r.totalFlops(), 1e-9);
                assertEquals(DType.F32, r.linears().get(0).dtype());
            }
        }
    }

    @Test
    void rejectsInputsThatDoNotAddUpToTheWeight() {
        try (PointerScope scope = new PointerScope()) {
            GeneratorOptional g = new GeneratorOptional(createCPUGenerator(2));
            Linear proj = new Linear(randn(g, 16, 48), null);
            IllegalArgumentException wrongWidth = assertThrows(IllegalArgumentException.class,
                    () -> proj.forwardConcat(randn(g, 1, 6, 16), randn(g, 1, 6, 16)));
            assertTrue(wrongWidth.getMessage().contains("[16, 48]"), wrongWidth.getMessage());
            assertThrows(IllegalArgumentException.class, () -> proj.forwardConcat(randn(g, 1, 6, 16), randn(g, 1, 5, 32)),
                    "different token counts");
        }
    }
}
