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

    /** {@code prefix.weight [out, in]} and {@code prefix.bias [out]}. */
    public static void linear(Map<String, long[]> m, String prefix, long in, long out) {
        m.put(prefix + ".weight", new long[] {out, in});
        m.put(prefix + ".bias", new long[] {out});
    }

    /**
     * A dual-stream block as FLUX and HunyuanVideo store it ({@code FluxTransformerBlock} /
     * {@code HunyuanVideoTransformerBlock}): adaLN-Zero per stream, joint attention with RMS q/k norms, one MLP per stream.
     */
    public static void dualStreamBlock(Map<String, long[]> m, String p, long d, long mlp, long headDim) {
        linear(m, p + "norm1.linear", d, 6 * d);
        linear(m, p + "norm1_context.linear", d, 6 * d);
        for (String proj : new String[] {"to_q", "to_k", "to_v", "add_q_proj", "add_k_proj", "add_v_proj"}) linear(m, p + "attn." + proj, d, d);
        for (String norm : new String[] {"norm_q", "norm_k", "norm_added_q", "norm_added_k"}) m.put(p + "attn." + norm + ".weight", new long[] {headDim});
        linear(m, p + "attn.to_out.0", d, d);
        linear(m, p + "attn.to_add_out", d, d);
        linear(m, p + "ff.net.0.proj", d, mlp);
        linear(m, p + "ff.net.2", mlp, d);
        linear(m, p + "ff_context.net.0.proj", d, mlp);
        linear(m, p + "ff_context.net.2", mlp, d);
    }

    /** A single-stream block (attention and MLP in parallel, one output projection over both), FLUX and HunyuanVideo. */
    public static void singleStreamBlock(Map<String, long[]> m, String p, long d, long mlp, long headDim) {
        linear(m, p + "norm.linear", d, 3 * d);
        linear(m, p + "proj_mlp", d, mlp);
        for (String proj : new String[] {"to_q", "to_k", "to_v"}) linear(m, p + "attn." + proj, d, d);
        m.put(p + "attn.norm_q.weight", new long[] {headDim});
        m.put(p + "attn.norm_k.weight", new long[] {headDim});
        linear(m, p + "proj_out", d + mlp, d);
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
