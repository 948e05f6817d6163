package io.mmdit4j.io;

import io.mmdit4j.nn.Linear;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A recording StateDict: what a loader takes, in call order, as meta tensors; the modules it names. */
class RecordingStateDictTest {

    @Test
    void takesAreRecordedInCallOrderAndAnsweredWithMetaTensors() {
        StateDict sd = StateDict.recording("test");
        try (Linear proj = Linear.load(sd, "proj", 3, 4, DType.BF16);
             Tensor norm = sd.take("norm.weight", DType.F32, 5);
             Tensor optional = sd.takeOptional("table", DType.F32, 1, 6, 2)) {
            assertTrue(proj.weight().is_meta() && norm.is_meta() && optional.is_meta(), "no weight memory");
            assertArrayEquals(new long[] {4, 3}, Tensors.shape(proj.weight()));
            assertEquals(DType.BF16, Tensors.dtype(proj.weight()));
            assertEquals(DType.F32, Tensors.dtype(norm));

            Map<String, long[]> recorded = sd.recorded();
            assertEquals(List.of("proj.weight", "proj.bias", "norm.weight", "table"), List.copyOf(recorded.keySet()));
            assertArrayEquals(new long[] {4, 3}, recorded.get("proj.weight"));
            assertArrayEquals(new long[] {1, 6, 2}, recorded.get("table"));
            sd.requireAllTaken();
            assertEquals(Map.of("proj", proj), sd.built(Linear.class), "Linear.load names the Linear it builds");
            assertSame(proj, sd.built(Linear.class).get("proj"));
        }
    }

    @Test
    void aKeyTakenAgainKeepsItsPlaceAndMustKeepItsShape() {
        StateDict sd = StateDict.recording("test");
        sd.take("a", DType.F32, 2).close();
        sd.take("b", DType.F32, 3).close();
        sd.take("a", DType.F32, 2).close();
        assertEquals(List.of("a", "b"), List.copyOf(sd.recorded().keySet()));
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> sd.take("a", DType.F32, 2, 1));
        assertTrue(e.getMessage().contains("'a' taken as [2] and as [2, 1]"), e.getMessage());
    }

    @Test
    void theRecordedListIsACopyAndOnlyARecordingHasOne() {
        StateDict sd = StateDict.recording("test");
        sd.take("a", DType.F32, 2).close();
        sd.recorded().get("a")[0] = 7;
        sd.recorded().clear();
        assertArrayEquals(new long[] {2}, sd.recorded().get("a"));
        StateDict plain = new StateDict("plain", Map.of());
        assertThrows(IllegalStateException.class, plain::recorded);
        assertEquals(null, plain.takeOptional("a", DType.F32, 2), "a plain StateDict has no optional tensor it lacks");
    }

    @Test
    void renamingStacksTensorsGivenOneNameAlongRows() {
        Map<String, long[]> shapes = new java.util.LinkedHashMap<>();
        shapes.put("q.weight", new long[] {4, 8});
        shapes.put("norm", new long[] {8});
        shapes.put("k.weight", new long[] {4, 8});
        shapes.put("mlp.weight", new long[] {16, 8});
        Map<String, long[]> fused = ParameterShapes.renamed(shapes, k -> k.endsWith(".weight") ? "qkv.weight" : k);
        assertEquals(List.of("qkv.weight", "norm"), List.copyOf(fused.keySet()));
        assertArrayEquals(new long[] {24, 8}, fused.get("qkv.weight"));
        assertArrayEquals(new long[] {4, 8}, shapes.get("q.weight"), "the input is left as it was");
        shapes.put("bad.weight", new long[] {4, 2});
        assertThrows(IllegalArgumentException.class, () -> ParameterShapes.renamed(shapes, k -> k.endsWith(".weight") ? "qkv.weight" : k));
    }
}
