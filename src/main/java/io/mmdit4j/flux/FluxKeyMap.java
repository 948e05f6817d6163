package io.mmdit4j.flux;

import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.io.StateDict;
import io.mmdit4j.io.StateDict.Entry;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.bytedeco.pytorch.global.torch.cat;

/**
 * Original Black Forest Labs FLUX checkpoint names ({@code flux1-dev.safetensors}, optionally with ComfyUI's
 * {@code model.diffusion_model.} prefix) to diffusers names. Fused projections are split into row views
 * (no copy): {@code qkv} into q, k, v and single-block {@code linear1} into q, k, v, mlp. The final layer's
 * modulation halves are swapped (BFL: shift, scale; diffusers: scale, shift). Unknown keys keep their name
 * so that the model reports them as unexpected.
 */
public final class FluxKeyMap {
    private FluxKeyMap() {}

    public static final String COMFY_PREFIX = "model.diffusion_model.";

    private static final String[][] RENAMES = {
            {"img_in.", "x_embedder."},
            {"txt_in.", "context_embedder."},
            {"time_in.in_layer.", "time_text_embed.timestep_embedder.linear_1."},
            {"time_in.out_layer.", "time_text_embed.timestep_embedder.linear_2."},
            {"vector_in.in_layer.", "time_text_embed.text_embedder.linear_1."},
            {"vector_in.out_layer.", "time_text_embed.text_embedder.linear_2."},
            {"guidance_in.in_layer.", "time_text_embed.guidance_embedder.linear_1."},
            {"guidance_in.out_layer.", "time_text_embed.guidance_embedder.linear_2."},
            {"final_layer.linear.", "proj_out."},
    };

    private static final String[][] DOUBLE_RENAMES = {
            {"img_mod.lin.", "norm1.linear."},
            {"txt_mod.lin.", "norm1_context.linear."},
            {"img_attn.norm.query_norm.scale", "attn.norm_q.weight"},
            {"img_attn.norm.key_norm.scale", "attn.norm_k.weight"},
            {"txt_attn.norm.query_norm.scale", "attn.norm_added_q.weight"},
            {"txt_attn.norm.key_norm.scale", "attn.norm_added_k.weight"},
            {"img_attn.proj.", "attn.to_out.0."},
            {"txt_attn.proj.", "attn.to_add_out."},
            {"img_mlp.0.", "ff.net.0.proj."},
            {"img_mlp.2.", "ff.net.2."},
            {"txt_mlp.0.", "ff_context.net.0.proj."},
            {"txt_mlp.2.", "ff_context.net.2."},
    };

    private static final String[][] SINGLE_RENAMES = {
            {"modulation.lin.", "norm.linear."},
            {"norm.query_norm.scale", "attn.norm_q.weight"},
            {"norm.key_norm.scale", "attn.norm_k.weight"},
            {"linear2.", "proj_out."},
    };

    private static final Pattern DOUBLE = Pattern.compile("^double_blocks\\.(\\d+)\\.(.*)$");
    private static final Pattern SINGLE = Pattern.compile("^single_blocks\\.(\\d+)\\.(.*)$");

    /** True when the tensors use BFL names (with or without the ComfyUI prefix). */
    public static boolean isBfl(StateDict sd) {
        return sd.contains("img_in.weight") || sd.contains(COMFY_PREFIX + "img_in.weight")
                || sd.keys().stream().anyMatch(k -> k.startsWith("double_blocks.") || k.startsWith(COMFY_PREFIX + "double_blocks."));
    }

    public static StateDict fromBfl(StateDict bfl) {
        try {
            return map(bfl);
        } catch (ModelFormatException e) {
            throw e.getMessage().startsWith(bfl.origin()) ? e : new ModelFormatException(bfl.origin() + ": " + e.getMessage(), e);
        }
    }

    private static StateDict map(StateDict bfl) {
        Map<String, Entry> out = new LinkedHashMap<>();
        long dim = hiddenSize(bfl);
        for (String key : bfl.keys()) {
            Entry e = bfl.entry(key);
            String k = key.startsWith(COMFY_PREFIX) ? key.substring(COMFY_PREFIX.length()) : key;
            Matcher d = DOUBLE.matcher(k);
            Matcher s = SINGLE.matcher(k);
            if (d.matches()) {
                mapDouble(d.group(1), d.group(2), key, e, out);
            } else if (s.matches()) {
                mapSingle(s.group(1), s.group(2), key, e, dim, out);
            } else if (k.startsWith("final_layer.adaLN_modulation.1.")) {
                out.put("norm_out.linear." + k.substring("final_layer.adaLN_modulation.1.".length()), swapHalves(key, e));
            } else {
                put(out, rename(k, RENAMES), e);
            }
        }
        return new StateDict(bfl.origin(), out);
    }

    private static void mapDouble(String i, String rest, String key, Entry e, Map<String, Entry> out) {
        String p = "transformer_blocks." + i + ".";
        if (rest.startsWith("img_attn.qkv.")) {
            splitRows(key, e, out, rest.substring("img_attn.qkv.".length()), thirds(key, e),
                    p + "attn.to_q.", p + "attn.to_k.", p + "attn.to_v.");
        } else if (rest.startsWith("txt_attn.qkv.")) {
            splitRows(key, e, out, rest.substring("txt_attn.qkv.".length()), thirds(key, e),
                    p + "attn.add_q_proj.", p + "attn.add_k_proj.", p + "attn.add_v_proj.");
        } else {
            String renamed = rename(rest, DOUBLE_RENAMES);
            put(out, renamed.equals(rest) ? "double_blocks." + i + "." + rest : p + renamed, e);
        }
    }

    private static void mapSingle(String i, String rest, String key, Entry e, long dim, Map<String, Entry> out) {
        String p = "single_transformer_blocks." + i + ".";
        if (rest.startsWith("linear1.")) {
            long rows = e.shape()[0];
            if (rows <= 3 * dim) {
                throw new ModelFormatException("tensor '" + key + "' has " + rows + " rows, expected 3 x " + dim
                        + " (q, k, v) plus the MLP width");
            }
            splitRows(key, e, out, rest.substring("linear1.".length()), new long[] {dim, dim, dim, rows - 3 * dim},
                    p + "attn.to_q.", p + "attn.to_k.", p + "attn.to_v.", p + "proj_mlp.");
        } else {
            String renamed = rename(rest, SINGLE_RENAMES);
            put(out, renamed.equals(rest) ? "single_blocks." + i + "." + rest : p + renamed, e);
        }
    }

    private static long[] thirds(String key, Entry e) {
        long rows = e.shape()[0];
        if (rows % 3 != 0) throw new ModelFormatException("tensor '" + key + "' has " + rows + " rows, expected a multiple of 3 (q, k, v)");
        return new long[] {rows / 3, rows / 3, rows / 3};
    }

    private static void splitRows(String key, Entry e, Map<String, Entry> out, String suffix, long[] sizes, String... targets) {
        long offset = 0;
        for (int j = 0; j < targets.length; j++) {
            long start = offset, len = sizes[j];
            long[] shape = e.shape().clone();
            shape[0] = len;
            put(out, targets[j] + suffix, new Entry(shape, e.dtype(), key, () -> {
                try (Tensor full = e.loader().get()) {
                    return full.narrow(0, start, len);
                }
            }));
            offset += len;
        }
    }

    private static Entry swapHalves(String key, Entry e) {
        long half = e.shape()[0] / 2;
        return new Entry(e.shape(), e.dtype(), key, () -> {
            Tensor full = e.loader().get();
            return cat(new TensorVector(full.narrow(0, half, half), full.narrow(0, 0, half)), 0);
        });
    }

    private static long hiddenSize(StateDict bfl) {
        for (String k : new String[] {"img_in.weight", COMFY_PREFIX + "img_in.weight"}) {
            long[] s = bfl.shape(k);
            if (s != null && s.length == 2) return s[0];
        }
        throw new ModelFormatException(bfl.origin() + ": not a FLUX transformer checkpoint: missing tensor 'img_in.weight'");
    }

    private static String rename(String k, String[][] table) {
        for (String[] r : table) {
            if (k.startsWith(r[0])) return r[1] + k.substring(r[0].length());
        }
        return k;
    }

    private static void put(Map<String, Entry> out, String name, Entry e) {
        if (out.putIfAbsent(name, e) != null) {
            throw new ModelFormatException("checkpoint maps two tensors to '" + name + "' ('" + out.get(name).from() + "' and '" + e.from() + "')");
        }
    }
}
