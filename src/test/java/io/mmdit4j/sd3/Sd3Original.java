package io.mmdit4j.sd3;

import io.mmdit4j.io.SafetensorsFile;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.bytedeco.pytorch.global.torch.cat;

/**
 * Test helper: the inverse of {@link Sd3KeyMap}, turning diffusers-named SD3 tensors into the original single-file
 * layout (fused qkv, (shift, scale) halves in the last text modulation and the final layer). Call inside a PointerScope.
 */
final class Sd3Original {
    private Sd3Original() {}

    private static final String[][] TOP = {
            {"pos_embed.proj.", "x_embedder.proj."},
            {"time_text_embed.timestep_embedder.linear_1.", "t_embedder.mlp.0."},
            {"time_text_embed.timestep_embedder.linear_2.", "t_embedder.mlp.2."},
            {"time_text_embed.text_embedder.linear_1.", "y_embedder.mlp.0."},
            {"time_text_embed.text_embedder.linear_2.", "y_embedder.mlp.2."},
            {"context_embedder.", "context_embedder."},
            {"proj_out.", "final_layer.linear."},
    };

    private static final String[][] BLOCK = {
            {"attn.norm_q.", "x_block.attn.ln_q."},
            {"attn.norm_k.", "x_block.attn.ln_k."},
            {"attn.norm_added_q.", "context_block.attn.ln_q."},
            {"attn.norm_added_k.", "context_block.attn.ln_k."},
            {"attn.to_out.0.", "x_block.attn.proj."},
            {"attn.to_add_out.", "context_block.attn.proj."},
            {"attn2.norm_q.", "x_block.attn2.ln_q."},
            {"attn2.norm_k.", "x_block.attn2.ln_k."},
            {"attn2.to_out.0.", "x_block.attn2.proj."},
            {"norm1.linear.", "x_block.adaLN_modulation.1."},
            {"ff.net.0.proj.", "x_block.mlp.fc1."},
            {"ff.net.2.", "x_block.mlp.fc2."},
            {"ff_context.net.0.proj.", "context_block.mlp.fc1."},
            {"ff_context.net.2.", "context_block.mlp.fc2."},
    };

    /** Fused projections: original name, then the three diffusers names in q, k, v order. */
    private static final String[][] QKV = {
            {"x_block.attn.qkv.", "attn.to_q.", "attn.to_k.", "attn.to_v."},
            {"context_block.attn.qkv.", "attn.add_q_proj.", "attn.add_k_proj.", "attn.add_v_proj."},
            {"x_block.attn2.qkv.", "attn2.to_q.", "attn2.to_k.", "attn2.to_v."},
    };

    static Map<String, Tensor> readAll(Path file) {
        Map<String, Tensor> m = new LinkedHashMap<>();
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            for (String k : f.keys()) m.put(k, f.load(k));
        }
        return m;
    }

    static Map<String, Tensor> fromDiffusers(Map<String, Tensor> d, Sd3Config c, String prefix) {
        Map<String, Tensor> o = new LinkedHashMap<>();
        put(o, prefix + "pos_embed", d.get("pos_embed.pos_embed"));
        for (String suffix : new String[] {"weight", "bias"}) {
            for (String[] r : TOP) put(o, prefix + r[1] + suffix, d.get(r[0] + suffix));
            put(o, prefix + "final_layer.adaLN_modulation.1." + suffix, swap(d.get("norm_out.linear." + suffix)));
            for (int i = 0; i < c.numLayers(); i++) {
                String b = "transformer_blocks." + i + ".", ob = prefix + "joint_blocks." + i + ".";
                for (String[] q : QKV) {
                    if (!d.containsKey(b + q[1] + suffix)) continue;
                    put(o, ob + q[0] + suffix, cat(new TensorVector(d.get(b + q[1] + suffix), d.get(b + q[2] + suffix), d.get(b + q[3] + suffix)), 0));
                }
                for (String[] r : BLOCK) {
                    if (d.containsKey(b + r[0] + suffix)) put(o, ob + r[1] + suffix, d.get(b + r[0] + suffix));
                }
                Tensor ctxMod = d.get(b + "norm1_context.linear." + suffix);
                put(o, ob + "context_block.adaLN_modulation.1." + suffix, c.isContextPreOnly(i) ? swap(ctxMod) : ctxMod);
            }
        }
        long in = d.values().stream().mapToLong(Tensor::numel).sum(), out = o.values().stream().mapToLong(Tensor::numel).sum();
        if (in != out) throw new IllegalStateException("inverse key map dropped tensors: " + in + " elements in, " + out + " out");
        return o;
    }

    private static Tensor swap(Tensor t) {
        long half = t.size(0) / 2;
        return cat(new TensorVector(t.narrow(0, half, half), t.narrow(0, 0, half)), 0);
    }

    private static void put(Map<String, Tensor> o, String key, Tensor t) {
        if (t == null) return;
        if (o.put(key, t) != null) throw new IllegalStateException("two tensors for " + key);
    }
}
