package io.mmdit4j.cosmos;

import com.fasterxml.jackson.databind.JsonNode;
import io.mmdit4j.io.JsonConfigs;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.io.StateDict;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.regex.Pattern;

/**
 * {@code CosmosTransformer3DModel} hyper-parameters (diffusers {@code config.json} names), Predict2 layout: adaLN-LoRA
 * conditioning, 3-D RoPE with {@code rope_scale}, per-head RMSNorm, T5 cross-attention, an optional padding-mask input
 * channel, no biases and no learnable position embedding.
 *
 * @param maxSize   the largest latent (t, h, w) the RoPE tables cover ({@code max_size}, before patching)
 * @param patchSize (t, h, w)
 * @param ropeScale (t, h, w) NTK scales of the RoPE theta
 */
public record CosmosConfig(int inChannels, int outChannels, int numAttentionHeads, int attentionHeadDim, int numLayers, double mlpRatio,
                           int textEmbedDim, int adalnLoraDim, int[] maxSize, int[] patchSize, double[] ropeScale, boolean concatPaddingMask) {

    public CosmosConfig {
        if (numAttentionHeads < 1 || attentionHeadDim < 1) throw new IllegalArgumentException("heads and head dim must be >= 1");
        if (attentionHeadDim / 6 * 2 < 4 || attentionHeadDim % 2 != 0) {
            throw new IllegalArgumentException("attention_head_dim " + attentionHeadDim + " is too small for the 3-D RoPE (needs an even width >= 12)");
        }
        if (numLayers < 1 || inChannels < 1 || outChannels < 1 || textEmbedDim < 1 || adalnLoraDim < 1 || mlpRatio <= 0) {
            throw new IllegalArgumentException("layers, channels, text width, adaln_lora_dim and mlp_ratio must be positive");
        }
        for (int[] a : new int[][] {maxSize, patchSize}) {
            if (a == null || a.length != 3 || Arrays.stream(a).anyMatch(v -> v < 1)) {
                throw new IllegalArgumentException("max_size and patch_size must be three positive sizes (t, h, w)");
            }
        }
        if (ropeScale == null || ropeScale.length != 3 || Arrays.stream(ropeScale).anyMatch(v -> !(v > 0))) {
            throw new IllegalArgumentException("rope_scale must be three positive scales (t, h, w)");
        }
        maxSize = maxSize.clone();
        patchSize = patchSize.clone();
        ropeScale = ropeScale.clone();
    }

    /** nvidia/Cosmos-Predict2-2B-Text2Image: 28 blocks of 16 heads × 128 (D 2048), T5-11B text (1024), adaLN-LoRA 256. */
    public static CosmosConfig predict2_2b() {
        return new CosmosConfig(16, 16, 16, 128, 28, 4.0, 1024, 256, new int[] {128, 240, 240}, new int[] {1, 2, 2},
                new double[] {1.0, 4.0, 4.0}, true);
    }

    /** The model width D. */
    public int innerDim() {
        return numAttentionHeads * attentionHeadDim;
    }

    /** The width of {@code temb} and of the adapter's pooled embedding: 3·D (shift, scale, gate). */
    public int conditioningDim() {
        return 3 * innerDim();
    }

    public int mlpHidden() {
        return (int) (innerDim() * mlpRatio);
    }

    /** Input values per patch token: {@code (in + padding-mask channel)·p_t·p_h·p_w}. */
    public int patchInputs() {
        return (inChannels + (concatPaddingMask ? 1 : 0)) * patchSize[0] * patchSize[1] * patchSize[2];
    }

    /** Output values per patch token: {@code out·p_t·p_h·p_w}. */
    public int patchOutputs() {
        return outChannels * patchSize[0] * patchSize[1] * patchSize[2];
    }

    /** Reads a diffusers {@code transformer/config.json}. */
    public static CosmosConfig fromDiffusersConfig(Path configJson) {
        JsonNode c = JsonConfigs.readObject(configJson);
        JsonConfigs.checkClass(c, configJson, "CosmosTransformer3DModel");
        JsonNode extra = c.get("extra_pos_embed_type");
        if (extra == null || !extra.isNull()) { // diffusers' default is "learnable" (Cosmos-Predict1)
            throw new ModelFormatException(configJson + ": extra_pos_embed_type " + (extra == null ? "absent (diffusers default \"learnable\")" : extra)
                    + ": the learnable position embedding of Cosmos-Predict1 is not supported (Predict2 layout: null)");
        }
        try {
            return new CosmosConfig(JsonConfigs.intOr(c, configJson, "in_channels", 16), JsonConfigs.intOr(c, configJson, "out_channels", 16),
                    JsonConfigs.intOr(c, configJson, "num_attention_heads", 32), JsonConfigs.intOr(c, configJson, "attention_head_dim", 128),
                    JsonConfigs.intOr(c, configJson, "num_layers", 28), JsonConfigs.doubleOr(c, configJson, "mlp_ratio", 4.0),
                    JsonConfigs.intOr(c, configJson, "text_embed_dim", 1024), JsonConfigs.intOr(c, configJson, "adaln_lora_dim", 256),
                    ints(c, configJson, "max_size", new int[] {128, 240, 240}), ints(c, configJson, "patch_size", new int[] {1, 2, 2}),
                    doubles(c, configJson, "rope_scale", new double[] {2.0, 1.0, 1.0}),
                    JsonConfigs.boolOr(c, configJson, "concat_padding_mask", true));
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(configJson + ": " + e.getMessage(), e);
        }
    }

    private static int[] ints(JsonNode c, Path file, String name, int[] dflt) {
        JsonNode a = c.get(name);
        if (a == null || a.isNull()) return dflt;
        if (!a.isArray() || a.size() != 3) throw new ModelFormatException(file + ": " + name + " must be a list of three integers, found " + a);
        int[] out = new int[3];
        for (int i = 0; i < 3; i++) {
            if (!a.get(i).canConvertToInt()) throw new ModelFormatException(file + ": " + name + " must be a list of three integers, found " + a);
            out[i] = a.get(i).asInt();
        }
        return out;
    }

    private static double[] doubles(JsonNode c, Path file, String name, double[] dflt) {
        JsonNode a = c.get(name);
        if (a == null || a.isNull()) return dflt;
        if (!a.isArray() || a.size() != 3) throw new ModelFormatException(file + ": " + name + " must be a list of three numbers, found " + a);
        double[] out = new double[3];
        for (int i = 0; i < 3; i++) {
            if (!a.get(i).isNumber()) throw new ModelFormatException(file + ": " + name + " must be a list of three numbers, found " + a);
            out[i] = a.get(i).asDouble();
        }
        return out;
    }

    private static final Pattern BLOCK = Pattern.compile("^transformer_blocks\\.(\\d+)\\.");
    static final String KIND = "Cosmos transformer";

    /**
     * Detects the configuration from diffusers-named tensors (a checkpoint without config.json, e.g. the reference's whole
     * wrapper state dict). What the weights do not show is Predict2's: patch (1, 2, 2) with the padding-mask channel,
     * max size (128, 240, 240), rope_scale (1, 4, 4), mlp ratio from the feed-forward width.
     */
    public static CosmosConfig detect(StateDict sd) {
        long[] patch = sd.requireShape("patch_embed.proj.weight", 2, KIND);
        long[] proj = sd.requireShape("proj_out.weight", 2, KIND);
        long[] qNorm = sd.requireShape("transformer_blocks.0.attn1.norm_q.weight", 1, KIND);
        long[] text = sd.requireShape("transformer_blocks.0.attn2.to_k.weight", 2, KIND);
        long[] lora = sd.requireShape("transformer_blocks.0.norm1.linear_1.weight", 2, KIND);
        long[] ff = sd.requireShape("transformer_blocks.0.ff.net.0.proj.weight", 2, KIND);
        int dim = (int) patch[0], headDim = (int) qNorm[0];
        if (headDim <= 0 || dim % headDim != 0) {
            throw new ModelFormatException(sd.origin() + ": the per-head norm has " + headDim + " entries, which does not divide the width " + dim);
        }
        int per = 4; // patch (1, 2, 2)
        if (patch[1] % per != 0 || proj[0] % per != 0) {
            throw new ModelFormatException(sd.origin() + ": 'patch_embed.proj.weight' " + Arrays.toString(patch) + " / 'proj_out.weight' "
                    + Arrays.toString(proj) + " do not fit patch size (1, 2, 2)");
        }
        try {
            return new CosmosConfig((int) (patch[1] / per) - 1, (int) (proj[0] / per), dim / headDim, headDim, sd.countIndexed(BLOCK),
                    (double) ff[0] / dim, (int) text[1], (int) lora[0], new int[] {128, 240, 240}, new int[] {1, 2, 2},
                    new double[] {1.0, 4.0, 4.0}, true);
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(sd.origin() + ": " + e.getMessage(), e);
        }
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof CosmosConfig c && inChannels == c.inChannels && outChannels == c.outChannels && numAttentionHeads == c.numAttentionHeads
                && attentionHeadDim == c.attentionHeadDim && numLayers == c.numLayers && mlpRatio == c.mlpRatio && textEmbedDim == c.textEmbedDim
                && adalnLoraDim == c.adalnLoraDim && Arrays.equals(maxSize, c.maxSize) && Arrays.equals(patchSize, c.patchSize)
                && Arrays.equals(ropeScale, c.ropeScale) && concatPaddingMask == c.concatPaddingMask;
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(new Object[] {inChannels, outChannels, numAttentionHeads, attentionHeadDim, numLayers, mlpRatio, textEmbedDim,
                adalnLoraDim, Arrays.hashCode(maxSize), Arrays.hashCode(patchSize), Arrays.hashCode(ropeScale), concatPaddingMask});
    }

    @Override
    public String toString() {
        return "CosmosConfig[" + numLayers + " blocks, " + numAttentionHeads + "x" + attentionHeadDim + " (D " + innerDim() + "), text "
                + textEmbedDim + ", adaLN-LoRA " + adalnLoraDim + ", patch " + Arrays.toString(patchSize) + ", rope_scale "
                + Arrays.toString(ropeScale) + ", in " + inChannels + (concatPaddingMask ? "+mask" : "") + ", out " + outChannels + "]";
    }
}
