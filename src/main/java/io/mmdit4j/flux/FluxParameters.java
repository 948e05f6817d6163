package io.mmdit4j.flux;

import io.mmdit4j.io.ParameterShapes;
import java.util.LinkedHashMap;
import java.util.Map;

import static io.mmdit4j.io.ParameterShapes.linear;

/** Every parameter of a FLUX transformer under its diffusers name, with its shape, in forward order. */
public final class FluxParameters {
    private FluxParameters() {}

    public static Map<String, long[]> shapes(FluxConfig c) {
        long d = c.innerDim(), mlp = c.mlpHidden(), hd = c.attentionHeadDim();
        Map<String, long[]> m = new LinkedHashMap<>();
        linear(m, "x_embedder", c.inChannels(), d);
        linear(m, "time_text_embed.timestep_embedder.linear_1", 256, d);
        linear(m, "time_text_embed.timestep_embedder.linear_2", d, d);
        if (c.guidanceEmbeds()) {
            linear(m, "time_text_embed.guidance_embedder.linear_1", 256, d);
            linear(m, "time_text_embed.guidance_embedder.linear_2", d, d);
        }
        linear(m, "time_text_embed.text_embedder.linear_1", c.pooledProjectionDim(), d);
        linear(m, "time_text_embed.text_embedder.linear_2", d, d);
        linear(m, "context_embedder", c.jointAttentionDim(), d);
        for (int i = 0; i < c.numLayers(); i++) {
            String p = "transformer_blocks." + i + ".";
            ParameterShapes.dualStreamBlock(m, p, d, mlp, hd);
        }
        for (int i = 0; i < c.numSingleLayers(); i++) {
            String p = "single_transformer_blocks." + i + ".";
            ParameterShapes.singleStreamBlock(m, p, d, mlp, hd);
        }
        linear(m, "norm_out.linear", d, 2 * d);
        linear(m, "proj_out", d, c.outChannels());
        return m;
    }

    /** The same parameters under original Black Forest Labs names (fused qkv and linear1; no ComfyUI prefix). */
    public static Map<String, long[]> bflShapes(FluxConfig c) {
        long d = c.innerDim(), mlp = c.mlpHidden(), hd = c.attentionHeadDim();
        Map<String, long[]> m = new LinkedHashMap<>();
        linear(m, "img_in", c.inChannels(), d);
        linear(m, "time_in.in_layer", 256, d);
        linear(m, "time_in.out_layer", d, d);
        if (c.guidanceEmbeds()) {
            linear(m, "guidance_in.in_layer", 256, d);
            linear(m, "guidance_in.out_layer", d, d);
        }
        linear(m, "vector_in.in_layer", c.pooledProjectionDim(), d);
        linear(m, "vector_in.out_layer", d, d);
        linear(m, "txt_in", c.jointAttentionDim(), d);
        for (int i = 0; i < c.numLayers(); i++) {
            String p = "double_blocks." + i + ".";
            for (String s : new String[] {"img", "txt"}) {
                linear(m, p + s + "_mod.lin", d, 6 * d);
                linear(m, p + s + "_attn.qkv", d, 3 * d);
                m.put(p + s + "_attn.norm.query_norm.scale", new long[] {hd});
                m.put(p + s + "_attn.norm.key_norm.scale", new long[] {hd});
                linear(m, p + s + "_attn.proj", d, d);
                linear(m, p + s + "_mlp.0", d, mlp);
                linear(m, p + s + "_mlp.2", mlp, d);
            }
        }
        for (int i = 0; i < c.numSingleLayers(); i++) {
            String p = "single_blocks." + i + ".";
            linear(m, p + "linear1", d, 3 * d + mlp);
            linear(m, p + "linear2", d + mlp, d);
            m.put(p + "norm.query_norm.scale", new long[] {hd});
            m.put(p + "norm.key_norm.scale", new long[] {hd});
            linear(m, p + "modulation.lin", d, 3 * d);
        }
        linear(m, "final_layer.linear", d, c.outChannels());
        linear(m, "final_layer.adaLN_modulation.1", d, 2 * d);
        return m;
    }

    /** Total number of parameters. */
    public static long count(FluxConfig c) {
        return ParameterShapes.count(shapes(c));
    }

}
