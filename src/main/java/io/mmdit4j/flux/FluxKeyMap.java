package io.mmdit4j.flux;

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
 * Original Black Forest Labs FLUX checkpoint names ({@code flux1-dev.safetensors}, optionally with ComfyUI's
 * {@code model.diffusion_model.} prefix) to diffusers names. Fused projections are split into row views
 * (no copy): {@code qkv} into q, k, v and single-block {@code linear1} into q, k, v, mlp. The final layer's
 * modulation halves are swapped (BFL: shift, scale; diffusers: scale, shift). Unknown keys keep their name
 * so that the model reports them as unexpected.
 */
public final class FluxKeyMap {
    private FluxKeyMap() {}

    public static final String COMFY_PREFIX = KeyMaps.DIFFUSION_MODEL_PREFIX;

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
        return KeyMaps.mapped(bfl, FluxKeyMap::map);
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
                mapDouble(d.group(1), d.group(2), e, out);
            } else if (s.matches()) {
                mapSingle(s.group(1), s.group(2), e, dim, out);
            } else if (k.startsWith("final_layer.adaLN_modulation.1.")) {
                out.put("norm_out.linear." + k.substring("final_layer.adaLN_modulation.1.".length()), EntryViews.swapHalves(e));
            } else {
                put(out, rename(k, RENAMES), e);
            }
        }
        return new StateDict(bfl.origin(), out);
    }

    private static void mapDouble(String i, String rest, Entry e, Map<String, Entry> out) {
        String p = "transformer_blocks." + i + ".";
        if (rest.startsWith("img_attn.qkv.")) {
            String suffix = rest.substring("img_attn.qkv.".length());
            KeyMaps.putChunks(out, e, p + "attn.to_q." + suffix, p + "attn.to_k." + suffix, p + "attn.to_v." + suffix);
        } else if (rest.startsWith("txt_attn.qkv.")) {
            String suffix = rest.substring("txt_attn.qkv.".length());
            KeyMaps.putChunks(out, e, p + "attn.add_q_proj." + suffix, p + "attn.add_k_proj." + suffix, p + "attn.add_v_proj." + suffix);
        } else {
            String renamed = rename(rest, DOUBLE_RENAMES);
            put(out, renamed.equals(rest) ? "double_blocks." + i + "." + rest : p + renamed, e);
        }
    }

    private static void mapSingle(String i, String rest, Entry e, long dim, Map<String, Entry> out) {
        String p = "single_transformer_blocks." + i + ".";
        if (rest.startsWith("linear1.")) {
            String suffix = rest.substring("linear1.".length());
            KeyMaps.putQkvMlp(out, e, dim, p + "attn.to_q." + suffix, p + "attn.to_k." + suffix, p + "attn.to_v." + suffix, p + "proj_mlp." + suffix);
        } else {
            String renamed = rename(rest, SINGLE_RENAMES);
            put(out, renamed.equals(rest) ? "single_blocks." + i + "." + rest : p + renamed, e);
        }
    }

    /** Rows {@code [from, from+rows)} of a BFL Linear's output that are rows {@code [to, to+rows)} of the diffusers Linear {@code module}. */
    public record RowSlice(String module, long from, long rows, long to) {}

    /**
     * Where the output rows of the BFL Linear {@code bflModule} (a name without {@code .weight}, e.g.
     * {@code double_blocks.0.img_attn.qkv}, optionally with the ComfyUI prefix) live in the diffusers model: fused
     * {@code qkv} in thirds, single-block {@code linear1} as {@code dim, dim, dim, rows - 3·dim}, the final modulation
     * with its halves swapped, everything else whole. Empty when the name is not a BFL Linear. Used to map weight deltas
     * (LoRA) of BFL layers onto the split diffusers Linears exactly as {@link #fromBfl} splits the weights.
     */
    public static java.util.List<RowSlice> linearRows(String bflModule, long rows, long dim) {
        String k = bflModule.startsWith(COMFY_PREFIX) ? bflModule.substring(COMFY_PREFIX.length()) : bflModule;
        Matcher d = DOUBLE.matcher(k);
        Matcher s = SINGLE.matcher(k);
        if (d.matches()) {
            String p = "transformer_blocks." + d.group(1) + ".";
            String rest = d.group(2);
            if (rest.equals("img_attn.qkv") || rest.equals("txt_attn.qkv")) {
                if (rows % 3 != 0) throw new ModelFormatException("'" + bflModule + "' has " + rows + " output rows, expected a multiple of 3 (q, k, v)");
                String[] t = rest.startsWith("img") ? new String[] {"attn.to_q", "attn.to_k", "attn.to_v"}
                        : new String[] {"attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"};
                return slices(p, t, new long[] {rows / 3, rows / 3, rows / 3});
            }
            return whole(p, rest, DOUBLE_RENAMES, rows);
        }
        if (s.matches()) {
            String p = "single_transformer_blocks." + s.group(1) + ".";
            if (s.group(2).equals("linear1")) {
                if (rows <= 3 * dim) {
                    throw new ModelFormatException("'" + bflModule + "' has " + rows + " output rows, expected 3 x " + dim + " (q, k, v) plus the MLP width");
                }
                return slices(p, new String[] {"attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp"}, new long[] {dim, dim, dim, rows - 3 * dim});
            }
            return whole(p, s.group(2), SINGLE_RENAMES, rows);
        }
        if (k.equals("final_layer.adaLN_modulation.1")) {
            long half = rows / 2;
            return java.util.List.of(new RowSlice("norm_out.linear", 0, half, half), new RowSlice("norm_out.linear", half, half, 0));
        }
        return whole("", k, RENAMES, rows);
    }

    /** The BFL names of every Linear of a model with configuration {@code c} (without {@code .weight}). */
    public static java.util.List<String> bflLinears(FluxConfig c) {
        java.util.List<String> out = new java.util.ArrayList<>(java.util.List.of("img_in", "txt_in", "time_in.in_layer", "time_in.out_layer",
                "vector_in.in_layer", "vector_in.out_layer"));
        if (c.guidanceEmbeds()) out.addAll(java.util.List.of("guidance_in.in_layer", "guidance_in.out_layer"));
        for (int i = 0; i < c.numLayers(); i++) {
            for (String stream : new String[] {"img", "txt"}) {
                for (String m : new String[] {"_mod.lin", "_attn.qkv", "_attn.proj", "_mlp.0", "_mlp.2"}) out.add("double_blocks." + i + "." + stream + m);
            }
        }
        for (int i = 0; i < c.numSingleLayers(); i++) {
            for (String m : new String[] {"linear1", "linear2", "modulation.lin"}) out.add("single_blocks." + i + "." + m);
        }
        out.addAll(java.util.List.of("final_layer.linear", "final_layer.adaLN_modulation.1"));
        return out;
    }

    private static java.util.List<RowSlice> slices(String prefix, String[] targets, long[] sizes) {
        java.util.List<RowSlice> out = new java.util.ArrayList<>();
        long offset = 0;
        for (int j = 0; j < targets.length; j++) {
            out.add(new RowSlice(prefix + targets[j], offset, sizes[j], 0));
            offset += sizes[j];
        }
        return out;
    }

    private static java.util.List<RowSlice> whole(String prefix, String rest, String[][] table, long rows) {
        String renamed = rename(rest + ".", table);
        if (renamed.equals(rest + ".") || !renamed.endsWith(".")) return java.util.List.of();
        return java.util.List.of(new RowSlice(prefix + renamed.substring(0, renamed.length() - 1), 0, rows, 0));
    }

    private static long hiddenSize(StateDict bfl) {
        for (String k : new String[] {"img_in.weight", COMFY_PREFIX + "img_in.weight"}) {
            long[] s = bfl.shape(k);
            if (s != null && s.length == 2) return s[0];
        }
        throw new ModelFormatException(bfl.origin() + ": not a FLUX transformer checkpoint: missing tensor 'img_in.weight'");
    }
}
