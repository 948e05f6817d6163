package io.mmdit4j.hunyuan;

import io.mmdit4j.io.EntryViews;
import io.mmdit4j.io.KeyRenames;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.io.StateDict;
import io.mmdit4j.io.StateDict.Entry;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.bytedeco.pytorch.global.torch.cat;

/**
 * Original HunyuanVideo checkpoint names ({@code mp_rank_00_model_states} converted to safetensors, optionally with
 * ComfyUI's {@code model.diffusion_model.} prefix) to diffusers names (MODEL-SPEC G.7). Fused projections are split
 * into row views (no copy): double-block {@code img_attn_qkv}/{@code txt_attn_qkv} and refiner {@code self_attn_qkv}
 * into q, k, v, single-block {@code linear1} into q, k, v, mlp. {@code final_layer.adaLN_modulation.1} has its halves
 * swapped (original: shift, scale; diffusers: scale, shift). Unknown keys keep their name so that the model reports
 * them as unexpected. {@link #toOriginal} is the inverse (tests, export).
 */
public final class HunyuanVideoKeyMap {
    private HunyuanVideoKeyMap() {}

    public static final String COMFY_PREFIX = "model.diffusion_model.";

    /** Top-level renames (original prefix, diffusers prefix). */
    private static final String[][] TOP = {
            {"img_in.proj.", "x_embedder.proj."},
            {"time_in.mlp.0.", "time_text_embed.timestep_embedder.linear_1."},
            {"time_in.mlp.2.", "time_text_embed.timestep_embedder.linear_2."},
            {"guidance_in.mlp.0.", "time_text_embed.guidance_embedder.linear_1."},
            {"guidance_in.mlp.2.", "time_text_embed.guidance_embedder.linear_2."},
            {"vector_in.in_layer.", "time_text_embed.text_embedder.linear_1."},
            {"vector_in.out_layer.", "time_text_embed.text_embedder.linear_2."},
            {"txt_in.input_embedder.", "context_embedder.proj_in."},
            {"txt_in.t_embedder.mlp.0.", "context_embedder.time_text_embed.timestep_embedder.linear_1."},
            {"txt_in.t_embedder.mlp.2.", "context_embedder.time_text_embed.timestep_embedder.linear_2."},
            {"txt_in.c_embedder.linear_1.", "context_embedder.time_text_embed.text_embedder.linear_1."},
            {"txt_in.c_embedder.linear_2.", "context_embedder.time_text_embed.text_embedder.linear_2."},
            {"final_layer.linear.", "proj_out."},
    };
    private static final String FINAL_MOD = "final_layer.adaLN_modulation.1.";
    private static final String NORM_OUT = "norm_out.linear.";

    private static final String[][] REFINER = {
            {"norm1.", "norm1."},
            {"norm2.", "norm2."},
            {"self_attn_proj.", "attn.to_out.0."},
            {"mlp.fc1.", "ff.net.0.proj."},
            {"mlp.fc2.", "ff.net.2."},
            {"adaLN_modulation.1.", "norm_out.linear."},
    };
    private static final String[][] DUAL = {
            {"img_mod.linear.", "norm1.linear."},
            {"txt_mod.linear.", "norm1_context.linear."},
            {"img_attn_q_norm.", "attn.norm_q."},
            {"img_attn_k_norm.", "attn.norm_k."},
            {"txt_attn_q_norm.", "attn.norm_added_q."},
            {"txt_attn_k_norm.", "attn.norm_added_k."},
            {"img_attn_proj.", "attn.to_out.0."},
            {"txt_attn_proj.", "attn.to_add_out."},
            {"img_mlp.fc1.", "ff.net.0.proj."},
            {"img_mlp.fc2.", "ff.net.2."},
            {"txt_mlp.fc1.", "ff_context.net.0.proj."},
            {"txt_mlp.fc2.", "ff_context.net.2."},
    };
    private static final String[][] SINGLE = {
            {"linear2.", "proj_out."},
            {"q_norm.", "attn.norm_q."},
            {"k_norm.", "attn.norm_k."},
            {"modulation.linear.", "norm.linear."},
    };

    /** A fused original projection and the diffusers projections it holds, in row order. */
    private record Fused(String original, List<String> parts) {}

    private static final Fused REFINER_QKV = new Fused("self_attn_qkv.", List.of("attn.to_q.", "attn.to_k.", "attn.to_v."));
    private static final Fused IMG_QKV = new Fused("img_attn_qkv.", List.of("attn.to_q.", "attn.to_k.", "attn.to_v."));
    private static final Fused TXT_QKV = new Fused("txt_attn_qkv.", List.of("attn.add_q_proj.", "attn.add_k_proj.", "attn.add_v_proj."));
    private static final Fused LINEAR1 = new Fused("linear1.", List.of("attn.to_q.", "attn.to_k.", "attn.to_v.", "proj_mlp."));

    /** Block scopes: original prefix pattern, diffusers prefix, renames, fused projections. */
    private record Scope(Pattern original, String originalPrefix, Pattern diffusers, String diffusersPrefix, String[][] renames, List<Fused> fused) {}

    private static final List<Scope> SCOPES = List.of(
            new Scope(Pattern.compile("^txt_in\\.individual_token_refiner\\.blocks\\.(\\d+)\\.(.*)$"), "txt_in.individual_token_refiner.blocks.",
                    Pattern.compile("^context_embedder\\.token_refiner\\.refiner_blocks\\.(\\d+)\\.(.*)$"), "context_embedder.token_refiner.refiner_blocks.",
                    REFINER, List.of(REFINER_QKV)),
            new Scope(Pattern.compile("^double_blocks\\.(\\d+)\\.(.*)$"), "double_blocks.",
                    Pattern.compile("^transformer_blocks\\.(\\d+)\\.(.*)$"), "transformer_blocks.", DUAL, List.of(IMG_QKV, TXT_QKV)),
            new Scope(Pattern.compile("^single_blocks\\.(\\d+)\\.(.*)$"), "single_blocks.",
                    Pattern.compile("^single_transformer_blocks\\.(\\d+)\\.(.*)$"), "single_transformer_blocks.", SINGLE, List.of(LINEAR1)));

    /** True when the tensors use original HunyuanVideo names (with or without the ComfyUI prefix). */
    public static boolean isOriginal(StateDict sd) {
        return sd.contains("img_in.proj.weight") || sd.contains(COMFY_PREFIX + "img_in.proj.weight")
                || sd.keys().stream().anyMatch(k -> k.startsWith("double_blocks.") || k.startsWith(COMFY_PREFIX + "double_blocks."));
    }

    public static StateDict fromOriginal(StateDict original) {
        try {
            return map(original);
        } catch (ModelFormatException e) {
            throw e.getMessage().startsWith(original.origin()) ? e : new ModelFormatException(original.origin() + ": " + e.getMessage(), e);
        }
    }

    private static StateDict map(StateDict src) {
        Map<String, Entry> out = new LinkedHashMap<>();
        long dim = hiddenSize(src);
        for (String key : src.keys()) {
            Entry e = src.entry(key);
            String k = key.startsWith(COMFY_PREFIX) ? key.substring(COMFY_PREFIX.length()) : key;
            if (k.startsWith(FINAL_MOD)) {
                put(out, NORM_OUT + k.substring(FINAL_MOD.length()), EntryViews.swapHalves(e));
                continue;
            }
            boolean scoped = false;
            for (Scope s : SCOPES) {
                Matcher m = s.original().matcher(k);
                if (!m.matches()) continue;
                scoped = true;
                String p = s.diffusersPrefix() + m.group(1) + ".", rest = m.group(2);
                Fused f = s.fused().stream().filter(x -> rest.startsWith(x.original())).findFirst().orElse(null);
                if (f != null) {
                    splitRows(key, e, out, p, rest.substring(f.original().length()), f, dim);
                } else {
                    String renamed = KeyRenames.rename(rest, s.renames(), false);
                    put(out, renamed == null ? k : p + renamed, e);
                }
                break;
            }
            if (!scoped) {
                String renamed = KeyRenames.rename(k, TOP, false);
                put(out, renamed == null ? k : renamed, e);
            }
        }
        return new StateDict(src.origin(), out);
    }

    /**
     * Diffusers-named tensors under their original names (fused projections concatenated, final modulation halves
     * swapped back): the inverse of {@link #fromOriginal}. The returned tensors are new references owned by the caller.
     */
    public static Map<String, Tensor> toOriginal(Map<String, Tensor> diffusers) {
        Map<String, Tensor> out = new LinkedHashMap<>();
        Map<String, Tensor[]> groups = new LinkedHashMap<>();
        for (Map.Entry<String, Tensor> en : diffusers.entrySet()) {
            String k = en.getKey();
            Tensor t = en.getValue();
            if (k.startsWith(NORM_OUT)) {
                long half = t.size(0) / 2;
                out.put(FINAL_MOD + k.substring(NORM_OUT.length()), cat(new TensorVector(t.narrow(0, half, half), t.narrow(0, 0, half)), 0));
                continue;
            }
            boolean scoped = false;
            for (Scope s : SCOPES) {
                Matcher m = s.diffusers().matcher(k);
                if (!m.matches()) continue;
                scoped = true;
                String p = s.originalPrefix() + m.group(1) + ".", rest = m.group(2);
                boolean fusedPart = false;
                for (Fused f : s.fused()) {
                    for (int j = 0; j < f.parts().size(); j++) {
                        if (rest.startsWith(f.parts().get(j))) {
                            String name = p + f.original() + rest.substring(f.parts().get(j).length());
                            groups.computeIfAbsent(name, x -> new Tensor[f.parts().size()])[j] = t;
                            fusedPart = true;
                        }
                    }
                }
                if (!fusedPart) {
                    String renamed = KeyRenames.rename(rest, s.renames(), true);
                    out.put(renamed == null ? k : p + renamed, t.clone());
                }
                break;
            }
            if (!scoped) {
                String renamed = KeyRenames.rename(k, TOP, true);
                out.put(renamed == null ? k : renamed, t.clone());
            }
        }
        groups.forEach((name, parts) -> {
            for (Tensor p : parts) {
                if (p == null) throw new IllegalArgumentException("incomplete fused projection for '" + name + "'");
            }
            out.put(name, cat(new TensorVector(parts), 0));
        });
        return out;
    }

    private static void splitRows(String key, Entry e, Map<String, Entry> out, String prefix, String suffix, Fused f, long dim) {
        long rows = e.shape()[0];
        long[] sizes = new long[f.parts().size()];
        if (f == LINEAR1) {
            if (rows <= 3 * dim) {
                throw new ModelFormatException("tensor '" + key + "' has " + rows + " rows, expected 3 x " + dim + " (q, k, v) plus the MLP width");
            }
            sizes = new long[] {dim, dim, dim, rows - 3 * dim};
        } else {
            if (rows % 3 != 0) throw new ModelFormatException("tensor '" + key + "' has " + rows + " rows, expected a multiple of 3 (q, k, v)");
            java.util.Arrays.fill(sizes, rows / 3);
        }
        long offset = 0;
        for (int j = 0; j < sizes.length; j++) {
            put(out, prefix + f.parts().get(j) + suffix, EntryViews.rows(e, offset, sizes[j]));
            offset += sizes[j];
        }
    }

    private static long hiddenSize(StateDict src) {
        for (String k : new String[] {"img_in.proj.weight", COMFY_PREFIX + "img_in.proj.weight"}) {
            long[] s = src.shape(k);
            if (s != null && s.length == 5) return s[0];
        }
        throw new ModelFormatException(src.origin() + ": not a HunyuanVideo transformer checkpoint: missing tensor 'img_in.proj.weight' "
                + "(rank 5, the Conv3d patch embedding)");
    }

    private static void put(Map<String, Entry> out, String name, Entry e) {
        if (out.putIfAbsent(name, e) != null) {
            throw new ModelFormatException("checkpoint maps two tensors to '" + name + "' ('" + out.get(name).from() + "' and '" + e.from() + "')");
        }
    }
}
