package io.mmdit4j.sd3;

import io.mmdit4j.io.ParameterShapes;
import java.util.LinkedHashMap;
import java.util.Map;

import static io.mmdit4j.io.ParameterShapes.linear;

/** Every tensor of an SD3 transformer under its diffusers name (and under the original names), with its shape. */
public final class Sd3Parameters {
    private Sd3Parameters() {}

    /** Diffusers names in forward order; includes the positional table buffer {@code pos_embed.pos_embed}. */
    public static Map<String, long[]> shapes(Sd3Config c) {
        long d = c.innerDim(), mlp = c.mlpHidden(), hd = c.attentionHeadDim(), p = c.patchSize(), m = c.posEmbedMaxSize();
        Map<String, long[]> s = new LinkedHashMap<>();
        s.put("pos_embed.pos_embed", new long[] {1, m * m, d});
        s.put("pos_embed.proj.weight", new long[] {d, c.inChannels(), p, p});
        s.put("pos_embed.proj.bias", new long[] {d});
        linear(s, "time_text_embed.timestep_embedder.linear_1", 256, d);
        linear(s, "time_text_embed.timestep_embedder.linear_2", d, d);
        linear(s, "time_text_embed.text_embedder.linear_1", c.pooledProjectionDim(), d);
        linear(s, "time_text_embed.text_embedder.linear_2", d, d);
        linear(s, "context_embedder", c.jointAttentionDim(), d);
        for (int i = 0; i < c.numLayers(); i++) {
            String b = "transformer_blocks." + i + ".";
            boolean last = c.isContextPreOnly(i);
            linear(s, b + "norm1.linear", d, (c.isDual(i) ? 9 : 6) * d);
            linear(s, b + "norm1_context.linear", d, (last ? 2 : 6) * d);
            for (String proj : new String[] {"to_q", "to_k", "to_v", "add_q_proj", "add_k_proj", "add_v_proj"}) linear(s, b + "attn." + proj, d, d);
            if (c.qkNorm()) {
                for (String n : new String[] {"norm_q", "norm_k", "norm_added_q", "norm_added_k"}) s.put(b + "attn." + n + ".weight", new long[] {hd});
            }
            linear(s, b + "attn.to_out.0", d, d);
            if (!last) linear(s, b + "attn.to_add_out", d, d);
            if (c.isDual(i)) {
                for (String proj : new String[] {"to_q", "to_k", "to_v"}) linear(s, b + "attn2." + proj, d, d);
                if (c.qkNorm()) {
                    s.put(b + "attn2.norm_q.weight", new long[] {hd});
                    s.put(b + "attn2.norm_k.weight", new long[] {hd});
                }
                linear(s, b + "attn2.to_out.0", d, d);
            }
            linear(s, b + "ff.net.0.proj", d, mlp);
            linear(s, b + "ff.net.2", mlp, d);
            if (!last) {
                linear(s, b + "ff_context.net.0.proj", d, mlp);
                linear(s, b + "ff_context.net.2", mlp, d);
            }
        }
        linear(s, "norm_out.linear", d, 2 * d);
        linear(s, "proj_out", d, p * p * c.outChannels());
        return s;
    }

    /** The same tensors under the original single-file names (fused qkv; without the {@code model.diffusion_model.} prefix). */
    public static Map<String, long[]> originalShapes(Sd3Config c) {
        long d = c.innerDim(), mlp = c.mlpHidden(), hd = c.attentionHeadDim(), p = c.patchSize(), m = c.posEmbedMaxSize();
        Map<String, long[]> s = new LinkedHashMap<>();
        s.put("pos_embed", new long[] {1, m * m, d});
        s.put("x_embedder.proj.weight", new long[] {d, c.inChannels(), p, p});
        s.put("x_embedder.proj.bias", new long[] {d});
        linear(s, "t_embedder.mlp.0", 256, d);
        linear(s, "t_embedder.mlp.2", d, d);
        linear(s, "y_embedder.mlp.0", c.pooledProjectionDim(), d);
        linear(s, "y_embedder.mlp.2", d, d);
        linear(s, "context_embedder", c.jointAttentionDim(), d);
        for (int i = 0; i < c.numLayers(); i++) {
            String b = "joint_blocks." + i + ".";
            boolean last = c.isContextPreOnly(i);
            linear(s, b + "x_block.adaLN_modulation.1", d, (c.isDual(i) ? 9 : 6) * d);
            linear(s, b + "context_block.adaLN_modulation.1", d, (last ? 2 : 6) * d);
            for (String blk : new String[] {"x_block", "context_block"}) {
                linear(s, b + blk + ".attn.qkv", d, 3 * d);
                if (c.qkNorm()) {
                    s.put(b + blk + ".attn.ln_q.weight", new long[] {hd});
                    s.put(b + blk + ".attn.ln_k.weight", new long[] {hd});
                }
                if (blk.equals("x_block") || !last) {
                    linear(s, b + blk + ".attn.proj", d, d);
                    linear(s, b + blk + ".mlp.fc1", d, mlp);
                    linear(s, b + blk + ".mlp.fc2", mlp, d);
                }
            }
            if (c.isDual(i)) {
                linear(s, b + "x_block.attn2.qkv", d, 3 * d);
                if (c.qkNorm()) {
                    s.put(b + "x_block.attn2.ln_q.weight", new long[] {hd});
                    s.put(b + "x_block.attn2.ln_k.weight", new long[] {hd});
                }
                linear(s, b + "x_block.attn2.proj", d, d);
            }
        }
        linear(s, "final_layer.linear", d, p * p * c.outChannels());
        linear(s, "final_layer.adaLN_modulation.1", d, 2 * d);
        return s;
    }

    /** Learnable parameters (the positional table is a fixed buffer and is not counted). */
    public static long count(Sd3Config c) {
        long n = 0;
        for (Map.Entry<String, long[]> e : shapes(c).entrySet()) {
            if (e.getKey().equals("pos_embed.pos_embed")) continue;
            long k = 1;
            for (long v : e.getValue()) k *= v;
            n += k;
        }
        return n;
    }

    /** Elements of every stored tensor including the positional table (what the weight files hold). */
    public static long storedElements(Sd3Config c) {
        return ParameterShapes.count(shapes(c));
    }

}
