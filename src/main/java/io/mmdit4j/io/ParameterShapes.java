package io.mmdit4j.io;

import java.util.Map;

/**
 * Building a model's parameter list (diffusers names → shapes, in forward order) for dry runs, config detection
 * and parameter counts, and the blocks that several families share under the same diffusers names.
 */
public final class ParameterShapes {
    private ParameterShapes() {}

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
