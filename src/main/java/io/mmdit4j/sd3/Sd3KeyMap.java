package io.mmdit4j.sd3;

import io.mmdit4j.io.EntryViews;
import io.mmdit4j.io.KeyMaps;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.io.StateDict;
import io.mmdit4j.io.StateDict.Entry;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static io.mmdit4j.io.KeyMaps.put;
import static io.mmdit4j.io.KeyMaps.rename;

/**
 * Original Stability AI single-file names ({@code sd3_medium.safetensors}, {@code sd3.5_large.safetensors}: keys under
 * {@code model.diffusion_model.}) to diffusers names (MODEL-SPEC G.4). Fused {@code qkv} projections are split into row
 * views; the (shift, scale) halves of the last block's {@code context_block} modulation and of the final layer's
 * modulation are swapped into diffusers' (scale, shift). When the prefix is present, tensors outside it (text encoders
 * and VAE bundled in the same file) are not part of the transformer and are left out. Unknown keys keep their name
 * so that the model reports them as unexpected.
 */
public final class Sd3KeyMap {
    private Sd3KeyMap() {}

    public static final String PREFIX = KeyMaps.DIFFUSION_MODEL_PREFIX;

    private static final String[][] RENAMES = {
            {"x_embedder.proj.", "pos_embed.proj."},
            {"t_embedder.mlp.0.", "time_text_embed.timestep_embedder.linear_1."},
            {"t_embedder.mlp.2.", "time_text_embed.timestep_embedder.linear_2."},
            {"y_embedder.mlp.0.", "time_text_embed.text_embedder.linear_1."},
            {"y_embedder.mlp.2.", "time_text_embed.text_embedder.linear_2."},
            {"context_embedder.", "context_embedder."},
            {"final_layer.linear.", "proj_out."},
    };

    /** Per joint block, after {@code joint_blocks.N.}; fused qkv and the modulations are handled separately. */
    private static final String[][] BLOCK_RENAMES = {
            {"x_block.attn.ln_q.", "attn.norm_q."},
            {"x_block.attn.ln_k.", "attn.norm_k."},
            {"context_block.attn.ln_q.", "attn.norm_added_q."},
            {"context_block.attn.ln_k.", "attn.norm_added_k."},
            {"x_block.attn.proj.", "attn.to_out.0."},
            {"context_block.attn.proj.", "attn.to_add_out."},
            {"x_block.attn2.ln_q.", "attn2.norm_q."},
            {"x_block.attn2.ln_k.", "attn2.norm_k."},
            {"x_block.attn2.proj.", "attn2.to_out.0."},
            {"x_block.adaLN_modulation.1.", "norm1.linear."},
            {"x_block.mlp.fc1.", "ff.net.0.proj."},
            {"x_block.mlp.fc2.", "ff.net.2."},
            {"context_block.mlp.fc1.", "ff_context.net.0.proj."},
            {"context_block.mlp.fc2.", "ff_context.net.2."},
    };

    private static final String[][] QKV = {
            {"x_block.attn.qkv.", "attn.to_q.", "attn.to_k.", "attn.to_v."},
            {"context_block.attn.qkv.", "attn.add_q_proj.", "attn.add_k_proj.", "attn.add_v_proj."},
            {"x_block.attn2.qkv.", "attn2.to_q.", "attn2.to_k.", "attn2.to_v."},
    };

    private static final Pattern BLOCK = Pattern.compile("^joint_blocks\\.(\\d+)\\.(.*)$");
    private static final String CONTEXT_MOD = "context_block.adaLN_modulation.1.";
    private static final String FINAL_MOD = "final_layer.adaLN_modulation.1.";

    /** True when the tensors use the original names (with or without the {@code model.diffusion_model.} prefix). */
    public static boolean isOriginal(StateDict sd) {
        return sd.keys().stream().anyMatch(k -> k.startsWith("joint_blocks.") || k.startsWith(PREFIX + "joint_blocks."));
    }

    /** Diffusers-named view of an original checkpoint (no tensor is read). */
    public static StateDict fromOriginal(StateDict original) {
        return KeyMaps.mapped(original, Sd3KeyMap::map);
    }

    private static StateDict map(StateDict sd) {
        boolean prefixed = sd.keys().stream().anyMatch(k -> k.startsWith(PREFIX));
        long dim = width(sd, prefixed);
        Map<String, Entry> out = new LinkedHashMap<>();
        for (String key : sd.keys()) {
            if (prefixed && !key.startsWith(PREFIX)) continue; // bundled text encoders / VAE
            String k = prefixed ? key.substring(PREFIX.length()) : key;
            Entry e = sd.entry(key);
            Matcher b = BLOCK.matcher(k);
            if (b.matches()) {
                mapBlock("transformer_blocks." + b.group(1) + ".", b.group(2), k, e, dim, out);
            } else if (k.equals("pos_embed")) {
                put(out, "pos_embed.pos_embed", e);
            } else if (k.startsWith(FINAL_MOD)) {
                put(out, "norm_out.linear." + k.substring(FINAL_MOD.length()), EntryViews.swapHalves(e));
            } else {
                put(out, rename(k, RENAMES), e);
            }
        }
        return new StateDict(sd.origin(), out);
    }

    private static void mapBlock(String p, String rest, String k, Entry e, long dim, Map<String, Entry> out) {
        for (String[] q : QKV) {
            if (rest.startsWith(q[0])) {
                String suffix = rest.substring(q[0].length());
                KeyMaps.putChunks(out, e, p + q[1] + suffix, p + q[2] + suffix, p + q[3] + suffix);
                return;
            }
        }
        if (rest.startsWith(CONTEXT_MOD)) {
            // The last block's text modulation is an AdaLayerNormContinuous: 2D rows stored (shift, scale).
            Entry mapped = e.shape()[0] == 2 * dim ? EntryViews.swapHalves(e) : e;
            put(out, p + "norm1_context.linear." + rest.substring(CONTEXT_MOD.length()), mapped);
            return;
        }
        String renamed = rename(rest, BLOCK_RENAMES);
        put(out, renamed.equals(rest) ? k : p + renamed, e);
    }

    private static long width(StateDict sd, boolean prefixed) {
        String key = (prefixed ? PREFIX : "") + "x_embedder.proj.weight";
        long[] s = sd.shape(key);
        if (s == null || s.length != 4) {
            throw new ModelFormatException(sd.origin() + ": not an SD3 transformer checkpoint: missing tensor '" + key
                    + "' (the patch embedding, [D, C, p, p])");
        }
        return s[0];
    }
}
