package io.mmdit4j.io;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Function;
import java.util.function.UnaryOperator;

/**
 * A model's parameter list (names → shapes, in load order) for dry runs, random weights and parameter counts, taken
 * from the model's own loader run on a {@link StateDict#recording}: the names are written once, where they are loaded.
 */
public final class ParameterShapes {
    private ParameterShapes() {}

    /**
     * The tensors {@code loader} takes, with their shapes, in the order it takes them (random weights are seeded in this
     * order). The loader runs on meta tensors (no memory); the model it returns is closed.
     */
    public static Map<String, long[]> of(String origin, Function<StateDict, ? extends AutoCloseable> loader) {
        StateDict recording = StateDict.recording(origin);
        try (AutoCloseable model = loader.apply(recording)) {
            return recording.recorded();
        } catch (RuntimeException e) {
            throw e;
        } catch (Exception e) {
            throw new IllegalStateException(origin + ": closing the recorded model failed", e);
        }
    }

    /**
     * The same tensors under the names {@code name} gives them (a key map's inverse): tensors given one name are
     * concatenated along dimension 0, as fused projections store them. In order of each name's first tensor.
     */
    public static Map<String, long[]> renamed(Map<String, long[]> shapes, UnaryOperator<String> name) {
        Map<String, long[]> out = new LinkedHashMap<>();
        shapes.forEach((k, shape) -> out.merge(name.apply(k), shape.clone(), (a, b) -> {
            if (!Arrays.equals(a, 1, a.length, b, 1, b.length)) {
                throw new IllegalArgumentException("'" + k + "' " + Arrays.toString(b) + " does not stack on " + Arrays.toString(a) + " along rows");
            }
            a[0] += b[0];
            return a;
        }));
        return out;
    }

    /** Elements of all listed tensors. */
    public static long count(Map<String, long[]> shapes) {
        long n = 0;
        for (long[] s : shapes.values()) {
            long k = 1;
            for (long v : s) k *= v;
            n += k;
        }
        return n;
    }
}
