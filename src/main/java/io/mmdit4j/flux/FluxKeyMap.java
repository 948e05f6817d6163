package io.mmdit4j.flux;

import io.mmdit4j.io.EntryViews;
import io.mmdit4j.io.KeyRenames;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.io.StateDict;
import io.mmdit4j.io.StateDict.Entry;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;


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

    /** Fused BFL projections (after the block prefix) and the diffusers projections their output rows hold, in row order. */
    private static final String[][] DOUBLE_FUSED = {
            {"img_attn.qkv.", "attn.to_q.", "attn.to_k.", "attn.to_v."},
            {"txt_attn.qkv.", "attn.add_q_proj.", "attn.add_k_proj.", "attn.add_v_proj."},
    };
    /** Single-block {@code linear1}: q, k, v ({@code dim} rows each), then the MLP's input projection (the other rows). */
    private static final String[][] SINGLE_FUSED = {{"linear1.", "attn.to_q.", "attn.to_k.", "attn.to_v.", "proj_mlp."}};

    /** The final modulation, stored (shift, scale) by BFL and chunked (scale, shift) by diffusers. */
    private static final String FINAL_MOD = "final_layer.adaLN_modulation.1.";
    private static final String NORM_OUT = "norm_out.linear.";

    private static final Pattern DOUBLE = Pattern.compile("^double_blocks\\.(\\d+)\\.(.*)$");
    private static final Pattern SINGLE = Pattern.compile("^single_blocks\\.(\\d+)\\.(.*)$");
    private static final Pattern DIFFUSERS_DOUBLE = Pattern.compile("^transformer_blocks\\.(\\d+)\\.(.*)$");
    private static final Pattern DIFFUSERS_SINGLE = Pattern.compile("^single_transformer_blocks\\.(\\d+)\\.(.*)$");

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
            } else if (k.startsWith(FINAL_MOD)) {
                out.put(NORM_OUT + k.substring(FINAL_MOD.length()), EntryViews.swapHalves(e));
            } else {
                put(out, rename(k, RENAMES, false), e);
            }
        }
        return new StateDict(bfl.origin(), out);
    }

    private static void mapDouble(String i, String rest, String key, Entry e, Map<String, Entry> out) {
        String p = "transformer_blocks." + i + ".";
        for (String[] f : DOUBLE_FUSED) {
            if (rest.startsWith(f[0])) {
                splitRows(key, e, out, rest.substring(f[0].length()), thirds(key, e), p + f[1], p + f[2], p + f[3]);
                return;
            }
        }
        String renamed = rename(rest, DOUBLE_RENAMES, false);
        put(out, renamed.equals(rest) ? "double_blocks." + i + "." + rest : p + renamed, e);
    }

    private static void mapSingle(String i, String rest, String key, Entry e, long dim, Map<String, Entry> out) {
        String p = "single_transformer_blocks." + i + ".";
        String[] f = SINGLE_FUSED[0];
        if (rest.startsWith(f[0])) {
            long rows = e.shape()[0];
            if (rows <= 3 * dim) {
                throw new ModelFormatException("tensor '" + key + "' has " + rows + " rows, expected 3 x " + dim
                        + " (q, k, v) plus the MLP width");
            }
            splitRows(key, e, out, rest.substring(f[0].length()), new long[] {dim, dim, dim, rows - 3 * dim}, p + f[1], p + f[2], p + f[3], p + f[4]);
        } else {
            String renamed = rename(rest, SINGLE_RENAMES, false);
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
            for (String[] f : DOUBLE_FUSED) {
                if ((rest + ".").equals(f[0])) {
                    if (rows % 3 != 0) throw new ModelFormatException("'" + bflModule + "' has " + rows + " output rows, expected a multiple of 3 (q, k, v)");
                    return slices(p, f, new long[] {rows / 3, rows / 3, rows / 3});
                }
            }
            return whole(p, rest, DOUBLE_RENAMES, rows);
        }
        if (s.matches()) {
            String p = "single_transformer_blocks." + s.group(1) + ".";
            if ((s.group(2) + ".").equals(SINGLE_FUSED[0][0])) {
                if (rows <= 3 * dim) {
                    throw new ModelFormatException("'" + bflModule + "' has " + rows + " output rows, expected 3 x " + dim + " (q, k, v) plus the MLP width");
                }
                return slices(p, SINGLE_FUSED[0], new long[] {dim, dim, dim, rows - 3 * dim});
            }
            return whole(p, s.group(2), SINGLE_RENAMES, rows);
        }
        if ((k + ".").equals(FINAL_MOD)) {
            long half = rows / 2;
            String normOut = NORM_OUT.substring(0, NORM_OUT.length() - 1);
            return java.util.List.of(new RowSlice(normOut, 0, half, half), new RowSlice(normOut, half, half, 0));
        }
        return whole("", k, RENAMES, rows);
    }

    /**
     * The BFL name of a diffusers-named tensor (without the ComfyUI prefix): the inverse of {@link #fromBfl} for names,
     * the parts of a fused projection sharing its name. Names the map does not know stay as they are.
     */
    public static String bflName(String key) {
        Matcher d = DIFFUSERS_DOUBLE.matcher(key);
        if (d.matches()) return bflBlockName(key, "double_blocks." + d.group(1) + ".", d.group(2), DOUBLE_FUSED, DOUBLE_RENAMES);
        Matcher s = DIFFUSERS_SINGLE.matcher(key);
        if (s.matches()) return bflBlockName(key, "single_blocks." + s.group(1) + ".", s.group(2), SINGLE_FUSED, SINGLE_RENAMES);
        if (key.startsWith(NORM_OUT)) return FINAL_MOD + key.substring(NORM_OUT.length());
        return rename(key, RENAMES, true);
    }

    private static String bflBlockName(String key, String prefix, String rest, String[][] fused, String[][] renames) {
        String name = KeyRenames.fusedName(rest, fused);
        if (name == null) name = KeyRenames.rename(rest, renames, true);
        return name == null ? key : prefix + name;
    }

    /** The BFL names of the given diffusers Linears (names without {@code .weight}), a fused layer once, in order. */
    public static java.util.List<String> bflLinears(java.util.Collection<String> linears) {
        String w = ".weight";
        return linears.stream().map(n -> bflName(n + w)).map(k -> k.substring(0, k.length() - w.length())).distinct().toList();
    }

    /** Row slices of a fused row's parts ({@code fused[1..]}, without their trailing dot) with the given row counts. */
    private static java.util.List<RowSlice> slices(String prefix, String[] fused, long[] sizes) {
        java.util.List<RowSlice> out = new java.util.ArrayList<>();
        long offset = 0;
        for (int j = 0; j < sizes.length; j++) {
            String part = fused[j + 1];
            out.add(new RowSlice(prefix + part.substring(0, part.length() - 1), offset, sizes[j], 0));
            offset += sizes[j];
        }
        return out;
    }

    private static java.util.List<RowSlice> whole(String prefix, String rest, String[][] table, long rows) {
        String renamed = rename(rest + ".", table, false);
        if (renamed.equals(rest + ".") || !renamed.endsWith(".")) return java.util.List.of();
        return java.util.List.of(new RowSlice(prefix + renamed.substring(0, renamed.length() - 1), 0, rows, 0));
    }

    private static long[] thirds(String key, Entry e) {
        long rows = e.shape()[0];
        if (rows % 3 != 0) throw new ModelFormatException("tensor '" + key + "' has " + rows + " rows, expected a multiple of 3 (q, k, v)");
        return new long[] {rows / 3, rows / 3, rows / 3};
    }

    private static void splitRows(String key, Entry e, Map<String, Entry> out, String suffix, long[] sizes, String... targets) {
        long offset = 0;
        for (int j = 0; j < targets.length; j++) {
            put(out, targets[j] + suffix, EntryViews.rows(e, offset, sizes[j]));
            offset += sizes[j];
        }
    }

    private static long hiddenSize(StateDict bfl) {
        for (String k : new String[] {"img_in.weight", COMFY_PREFIX + "img_in.weight"}) {
            long[] s = bfl.shape(k);
            if (s != null && s.length == 2) return s[0];
        }
        throw new ModelFormatException(bfl.origin() + ": not a FLUX transformer checkpoint: missing tensor 'img_in.weight'");
    }

    /** {@code k} renamed by {@code table} ({@link KeyRenames#rename}), or {@code k} itself when no row applies. */
    private static String rename(String k, String[][] table, boolean inverse) {
        return java.util.Objects.requireNonNullElse(KeyRenames.rename(k, table, inverse), k);
    }

    private static void put(Map<String, Entry> out, String name, Entry e) {
        if (out.putIfAbsent(name, e) != null) {
            throw new ModelFormatException("checkpoint maps two tensors to '" + name + "' ('" + out.get(name).from() + "' and '" + e.from() + "')");
        }
    }
}
