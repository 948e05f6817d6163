package io.mmdit4j.hunyuan;

import java.util.LinkedHashMap;
import java.util.Map;

/** Every parameter of a HunyuanVideo transformer under its diffusers name, with its shape, in forward order. */
public final class HunyuanVideoParameters {
    private HunyuanVideoParameters() {}

    public static Map<String, long[]> shapes(HunyuanVideoConfig c) {
        long d = c.innerDim(), mlp = c.mlpHidden(), hd = c.attentionHeadDim();
        Map<String, long[]> m = new LinkedHashMap<>();
        m.put("x_embedder.proj.weight", new long[] {d, c.inChannels(), c.patchSizeT(), c.patchSize(), c.patchSize()});
        m.put("x_embedder.proj.bias", new long[] {d});
        String ce = "context_embedder.";
        linear(m, ce + "time_text_embed.timestep_embedder.linear_1", 256, d);
        linear(m, ce + "time_text_embed.timestep_embedder.linear_2", d, d);
        linear(m, ce + "time_text_embed.text_embedder.linear_1", c.textEmbedDim(), d);
        linear(m, ce + "time_text_embed.text_embedder.linear_2", d, d);
        linear(m, ce + "proj_in", c.textEmbedDim(), d);
        for (int i = 0; i < c.numRefinerLayers(); i++) {
            String p = ce + "token_refiner.refiner_blocks." + i + ".";
            m.put(p + "norm1.weight", new long[] {d});
            m.put(p + "norm1.bias", new long[] {d});
            for (String proj : new String[] {"to_q", "to_k", "to_v", "to_out.0"}) linear(m, p + "attn." + proj, d, d);
            m.put(p + "norm2.weight", new long[] {d});
            m.put(p + "norm2.bias", new long[] {d});
            linear(m, p + "ff.net.0.proj", d, mlp);
            linear(m, p + "ff.net.2", mlp, d);
            linear(m, p + "norm_out.linear", d, 2 * d);
        }
        linear(m, "time_text_embed.timestep_embedder.linear_1", 256, d);
        linear(m, "time_text_embed.timestep_embedder.linear_2", d, d);
        if (c.guidanceEmbeds()) {
            linear(m, "time_text_embed.guidance_embedder.linear_1", 256, d);
            linear(m, "time_text_embed.guidance_embedder.linear_2", d, d);
        }
        linear(m, "time_text_embed.text_embedder.linear_1", c.pooledProjectionDim(), d);
        linear(m, "time_text_embed.text_embedder.linear_2", d, d);
        for (int i = 0; i < c.numLayers(); i++) {
            String p = "transformer_blocks." + i + ".";
            linear(m, p + "norm1.linear", d, 6 * d);
            linear(m, p + "norm1_context.linear", d, 6 * d);
            for (String proj : new String[] {"to_q", "to_k", "to_v", "add_q_proj", "add_k_proj", "add_v_proj"}) linear(m, p + "attn." + proj, d, d);
            for (String norm : new String[] {"norm_q", "norm_k", "norm_added_q", "norm_added_k"}) m.put(p + "attn." + norm + ".weight", new long[] {hd});
            linear(m, p + "attn.to_out.0", d, d);
            linear(m, p + "attn.to_add_out", d, d);
            linear(m, p + "ff.net.0.proj", d, mlp);
            linear(m, p + "ff.net.2", mlp, d);
            linear(m, p + "ff_context.net.0.proj", d, mlp);
            linear(m, p + "ff_context.net.2", mlp, d);
        }
        for (int i = 0; i < c.numSingleLayers(); i++) {
            String p = "single_transformer_blocks." + i + ".";
            linear(m, p + "norm.linear", d, 3 * d);
            linear(m, p + "proj_mlp", d, mlp);
            for (String proj : new String[] {"to_q", "to_k", "to_v"}) linear(m, p + "attn." + proj, d, d);
            m.put(p + "attn.norm_q.weight", new long[] {hd});
            m.put(p + "attn.norm_k.weight", new long[] {hd});
            linear(m, p + "proj_out", d + mlp, d);
        }
        linear(m, "norm_out.linear", d, 2 * d);
        linear(m, "proj_out", d, c.patchValues());
        return m;
    }

    /** Total number of parameters. */
    public static long count(HunyuanVideoConfig c) {
        long n = 0;
        for (long[] s : shapes(c).values()) {
            long k = 1;
            for (long v : s) k *= v;
            n += k;
        }
        return n;
    }

    private static void linear(Map<String, long[]> m, String prefix, long in, long out) {
        m.put(prefix + ".weight", new long[] {out, in});
        m.put(prefix + ".bias", new long[] {out});
    }
}
