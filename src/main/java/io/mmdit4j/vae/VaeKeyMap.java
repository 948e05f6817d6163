package io.mmdit4j.vae;

import io.mmdit4j.io.KeyMaps;
import io.mmdit4j.io.StateDict;
import io.mmdit4j.io.StateDict.Entry;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static io.mmdit4j.io.KeyMaps.put;

/**
 * AutoencoderKL checkpoint names to diffusers names (MODEL-SPEC G.5). Handles:
 * <ul>
 *   <li>the Black Forest Labs / original LDM layout ({@code ae.safetensors}): {@code down.I.block.J} →
 *       {@code down_blocks.I.resnets.J}, {@code up.K} → {@code up_blocks.(n-1-K)} (order reversed),
 *       {@code mid.block_1/2} → {@code mid_block.resnets.0/1}, {@code mid.attn_1.{norm,q,k,v,proj_out}} →
 *       {@code mid_block.attentions.0.{group_norm,to_q,to_k,to_v,to_out.0}}, {@code norm_out} →
 *       {@code conv_norm_out}, {@code nin_shortcut} → {@code conv_shortcut};</li>
 *   <li>old diffusers attention names ({@code query, key, value, proj_attn});</li>
 *   <li>1x1-conv attention weights {@code [C, C, 1, 1]}, viewed as {@code [C, C]} for Linear (no copy);</li>
 *   <li>the VAE part of a whole-pipeline single file ({@code first_stage_model.} or {@code vae.} prefix).</li>
 * </ul>
 * Unknown keys keep their name so that the model reports them as unexpected.
 */
public final class VaeKeyMap {
    private VaeKeyMap() {}

    private static final String[] PREFIXES = {"first_stage_model.", "vae."};

    private static final Pattern LDM_DOWN = Pattern.compile("^encoder\\.down\\.(\\d+)\\.(block\\.(\\d+)\\.|downsample\\.)(.*)$");
    private static final Pattern LDM_UP = Pattern.compile("^decoder\\.up\\.(\\d+)\\.(block\\.(\\d+)\\.|upsample\\.)(.*)$");
    private static final Pattern LDM_MID = Pattern.compile("^(encoder|decoder)\\.mid\\.(block_1|block_2|attn_1)\\.(.*)$");
    private static final Pattern LDM_NORM_OUT = Pattern.compile("^(encoder|decoder)\\.norm_out\\.(.*)$");
    private static final Pattern OLD_ATTENTION = Pattern.compile("^(.*\\.mid_block\\.attentions\\.\\d+\\.)(query|key|value|proj_attn)\\.(.*)$");
    private static final Pattern ATTENTION_WEIGHT = Pattern.compile("^.*\\.mid_block\\.attentions\\.\\d+\\.(to_q|to_k|to_v|to_out\\.0)\\.weight$");
    private static final Pattern UP_INDEX = Pattern.compile("^decoder\\.up\\.(\\d+)\\.");

    /** True when the tensors use the BFL/LDM names ({@code encoder.down.0.block.0...}, {@code decoder.mid.attn_1...}). */
    public static boolean isLdm(StateDict sd) {
        for (String k : sd.keys()) {
            if (LDM_DOWN.matcher(k).matches() || LDM_UP.matcher(k).matches() || LDM_MID.matcher(k).matches()) return true;
        }
        return false;
    }

    /** The tensors under diffusers' AutoencoderKL names (the same StateDict when nothing needs renaming). */
    public static StateDict toDiffusers(StateDict sd) {
        return KeyMaps.mapped(sd, VaeKeyMap::map);
    }

    private static StateDict map(StateDict sd) {
        String prefix = wrapperPrefix(sd);
        boolean ldm = isLdm(sd) || (prefix != null && isLdmKeys(sd, prefix));
        int upLevels = ldm ? upLevels(sd, prefix) : 0;
        Map<String, Entry> out = new LinkedHashMap<>();
        boolean changed = prefix != null;
        for (String key : sd.keys()) {
            if (prefix != null && !key.startsWith(prefix)) continue; // the rest of a whole-pipeline file
            String k = prefix != null ? key.substring(prefix.length()) : key;
            Entry e = sd.entry(key);
            String name = ldm ? fromLdm(k, upLevels) : k;
            Matcher old = OLD_ATTENTION.matcher(name);
            if (old.matches()) name = old.group(1) + newAttentionName(old.group(2)) + "." + old.group(3);
            if (ATTENTION_WEIGHT.matcher(name).matches() && e.shape().length == 4 && e.shape()[2] == 1 && e.shape()[3] == 1) {
                e = squeezed(e);
            }
            if (!name.equals(key) || e != sd.entry(key)) changed = true;
            put(out, name, e);
        }
        return changed ? new StateDict(sd.origin(), out) : sd;
    }

    /** The prefix of a whole-pipeline single file whose VAE tensors are nested, or null. */
    private static String wrapperPrefix(StateDict sd) {
        for (String k : sd.keys()) {
            if (k.startsWith("encoder.") || k.startsWith("decoder.")) return null;
        }
        for (String p : PREFIXES) {
            for (String k : sd.keys()) {
                if (k.startsWith(p + "decoder.")) return p;
            }
        }
        return null;
    }

    private static boolean isLdmKeys(StateDict sd, String prefix) {
        for (String k : sd.keys()) {
            if (!k.startsWith(prefix)) continue;
            String s = k.substring(prefix.length());
            if (LDM_DOWN.matcher(s).matches() || LDM_UP.matcher(s).matches() || LDM_MID.matcher(s).matches()) return true;
        }
        return false;
    }

    private static int upLevels(StateDict sd, String prefix) {
        int max = -1;
        for (String k : sd.keys()) {
            String s = prefix != null && k.startsWith(prefix) ? k.substring(prefix.length()) : k;
            Matcher m = UP_INDEX.matcher(s);
            if (m.find()) max = Math.max(max, Integer.parseInt(m.group(1)));
        }
        return max + 1;
    }

    private static String fromLdm(String k, int upLevels) {
        Matcher m = LDM_DOWN.matcher(k);
        if (m.matches()) {
            String p = "encoder.down_blocks." + m.group(1) + ".";
            return m.group(3) != null ? p + "resnets." + m.group(3) + "." + resnetName(m.group(4)) : p + "downsamplers.0." + m.group(4);
        }
        m = LDM_UP.matcher(k);
        if (m.matches()) {
            String p = "decoder.up_blocks." + (upLevels - 1 - Integer.parseInt(m.group(1))) + ".";
            return m.group(3) != null ? p + "resnets." + m.group(3) + "." + resnetName(m.group(4)) : p + "upsamplers.0." + m.group(4);
        }
        m = LDM_MID.matcher(k);
        if (m.matches()) {
            String p = m.group(1) + ".mid_block.";
            switch (m.group(2)) {
                case "block_1": return p + "resnets.0." + resnetName(m.group(3));
                case "block_2": return p + "resnets.1." + resnetName(m.group(3));
                default: return p + "attentions.0." + ldmAttentionName(m.group(3));
            }
        }
        m = LDM_NORM_OUT.matcher(k);
        if (m.matches()) return m.group(1) + ".conv_norm_out." + m.group(2);
        return k;
    }

    private static String resnetName(String rest) {
        return rest.startsWith("nin_shortcut.") ? "conv_shortcut." + rest.substring("nin_shortcut.".length()) : rest;
    }

    private static final String[][] LDM_ATTENTION = {{"norm.", "group_norm."}, {"q.", "to_q."}, {"k.", "to_k."}, {"v.", "to_v."},
            {"proj_out.", "to_out.0."}};

    private static String ldmAttentionName(String rest) {
        return KeyMaps.rename(rest, LDM_ATTENTION);
    }

    private static String newAttentionName(String old) {
        switch (old) {
            case "query": return "to_q";
            case "key": return "to_k";
            case "value": return "to_v";
            default: return "to_out.0";
        }
    }

    private static Entry squeezed(Entry e) {
        long[] shape = {e.shape()[0], e.shape()[1]};
        return new Entry(shape, e.dtype(), e.from(), () -> {
            try (org.bytedeco.pytorch.Tensor full = e.loader().get()) {
                return full.reshape(shape);
            }
        });
    }
}
