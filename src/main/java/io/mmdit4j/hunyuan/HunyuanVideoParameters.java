package io.mmdit4j.hunyuan;

import io.mmdit4j.io.ParameterShapes;
import java.util.LinkedHashMap;
import java.util.Map;

import static io.mmdit4j.io.ParameterShapes.linear;

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
            ParameterShapes.dualStreamBlock(m, p, d, mlp, hd);
        }
        for (int i = 0; i < c.numSingleLayers(); i++) {
            String p = "single_transformer_blocks." + i + ".";
            ParameterShapes.singleStreamBlock(m, p, d, mlp, hd);
        }
        linear(m, "norm_out.linear", d, 2 * d);
        linear(m, "proj_out", d, c.patchValues());
        return m;
    }

    /** Total number of parameters. */
    public static long count(HunyuanVideoConfig c) {
        return ParameterShapes.count(shapes(c));
    }

}
