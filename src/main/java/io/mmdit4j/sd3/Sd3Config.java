package io.mmdit4j.sd3;

import com.fasterxml.jackson.databind.JsonNode;
import io.mmdit4j.io.JsonConfigs;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.io.StateDict;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import java.util.stream.IntStream;

/**
 * {@code SD3Transformer2DModel} hyper-parameters (diffusers {@code config.json} names). Named factories for the
 * released models (MODEL-SPEC D.1), reading of a diffusers config, and detection from a checkpoint's tensor names
 * and shapes (original single files carry no config). The last joint block is always {@code context_pre_only}.
 *
 * @param qkNorm              true for {@code qk_norm="rms_norm"} (SD3.5), false for none (SD3)
 * @param dualAttentionLayers blocks with a second image self-attention ({@code attn2}, SD3.5 Medium), ascending
 */
public record Sd3Config(int sampleSize, int patchSize, int inChannels, int outChannels, int numLayers, int attentionHeadDim,
                        int numAttentionHeads, int jointAttentionDim, int captionProjectionDim, int pooledProjectionDim,
                        int posEmbedMaxSize, boolean qkNorm, List<Integer> dualAttentionLayers) {

    /** Width of the MMDiT heads when a checkpoint without q/k norms cannot show it (every released SD3 uses 64). */
    public static final int DEFAULT_HEAD_DIM = 64;

    public Sd3Config {
        dualAttentionLayers = List.copyOf(dualAttentionLayers);
        if (numLayers < 1) throw new IllegalArgumentException("num_layers must be >= 1, got " + numLayers);
        if (patchSize < 1 || attentionHeadDim < 1 || numAttentionHeads < 1 || inChannels < 1 || outChannels < 1 || posEmbedMaxSize < 1) {
            throw new IllegalArgumentException("patch_size, attention_head_dim, num_attention_heads, in/out_channels and pos_embed_max_size must be >= 1");
        }
        if (captionProjectionDim != attentionHeadDim * numAttentionHeads) {
            throw new IllegalArgumentException("caption_projection_dim " + captionProjectionDim + " must equal the model width "
                    + attentionHeadDim + " x " + numAttentionHeads + " (the text stream enters the joint blocks)");
        }
        int previous = -1;
        for (int l : dualAttentionLayers) {
            if (l <= previous || l >= numLayers) {
                throw new IllegalArgumentException("dual_attention_layers " + dualAttentionLayers + " must be ascending indices below num_layers " + numLayers);
            }
            previous = l;
        }
    }

    /** SD3.5 Large (and Large Turbo): 38 joint blocks, 38 x 64 = 2432, RMS q/k norms. */
    public static Sd3Config sd35Large() {
        return new Sd3Config(128, 2, 16, 16, 38, 64, 38, 4096, 2432, 2048, 192, true, List.of());
    }

    /** SD3.5 Medium: 24 joint blocks, 24 x 64 = 1536, RMS q/k norms, dual attention (SD35AdaLayerNormZeroX) in blocks 0..12. */
    public static Sd3Config sd35Medium() {
        return new Sd3Config(128, 2, 16, 16, 24, 64, 24, 4096, 1536, 2048, 384, true, IntStream.rangeClosed(0, 12).boxed().toList());
    }

    /** SD3 Medium: 24 joint blocks, 24 x 64 = 1536, no q/k norms. */
    public static Sd3Config sd3Medium() {
        return new Sd3Config(128, 2, 16, 16, 24, 64, 24, 4096, 1536, 2048, 192, false, List.of());
    }

    /** The factory config for a model name ({@code sd3.5-large}, {@code sd3.5-medium}, {@code sd3-medium}), or null. */
    public static Sd3Config named(String name) {
        return switch (name) {
            case "sd3.5-large", "sd3.5-large-turbo" -> sd35Large();
            case "sd3.5-medium" -> sd35Medium();
            case "sd3-medium" -> sd3Medium();
            default -> null;
        };
    }

    public int innerDim() {
        return attentionHeadDim * numAttentionHeads;
    }

    /** Hidden width of the feed-forward layers (4 x width, GELU-tanh). */
    public int mlpHidden() {
        return 4 * innerDim();
    }

    /** Blocks that modulation guidance numbers: the joint blocks 0..num_layers-1. */
    public int numGuidedBlocks() {
        return numLayers;
    }

    public boolean isDual(int block) {
        return dualAttentionLayers.contains(block);
    }

    /** The block whose text stream ends ({@code context_pre_only}): always the last. */
    public boolean isContextPreOnly(int block) {
        return block == numLayers - 1;
    }

    /** Reads a diffusers {@code transformer/config.json} (absent fields take diffusers' defaults). */
    public static Sd3Config fromDiffusersConfig(Path configJson) {
        JsonNode c = JsonConfigs.readObject(configJson);
        JsonConfigs.checkClass(c, configJson, "SD3Transformer2DModel");
        int in = JsonConfigs.intOr(c, configJson, "in_channels", 16);
        JsonNode qk = c.get("qk_norm");
        boolean rms = false;
        if (qk != null && !qk.isNull()) {
            if (!qk.isTextual() || !qk.asText().equals("rms_norm")) {
                throw new ModelFormatException(configJson + ": qk_norm " + qk + " is not supported (expected \"rms_norm\" or null)");
            }
            rms = true;
        }
        List<Integer> dual = new ArrayList<>();
        JsonNode d = c.get("dual_attention_layers");
        if (d != null && !d.isNull()) {
            if (!d.isArray()) throw new ModelFormatException(configJson + ": dual_attention_layers must be a list of block indices, found " + d);
            for (JsonNode i : d) {
                if (!i.isIntegralNumber()) throw new ModelFormatException(configJson + ": dual_attention_layers must hold integers, found " + i);
                dual.add(i.asInt());
            }
        }
        JsonNode out = c.get("out_channels");
        int heads = JsonConfigs.intOr(c, configJson, "num_attention_heads", 18);
        int headDim = JsonConfigs.intOr(c, configJson, "attention_head_dim", 64);
        try {
            return new Sd3Config(JsonConfigs.intOr(c, configJson, "sample_size", 128), JsonConfigs.intOr(c, configJson, "patch_size", 2), in,
                    out == null || out.isNull() ? in : JsonConfigs.intOr(c, configJson, "out_channels", in),
                    JsonConfigs.intOr(c, configJson, "num_layers", 18), headDim, heads,
                    JsonConfigs.intOr(c, configJson, "joint_attention_dim", 4096),
                    JsonConfigs.intOr(c, configJson, "caption_projection_dim", 1152),
                    JsonConfigs.intOr(c, configJson, "pooled_projection_dim", 2048),
                    JsonConfigs.intOr(c, configJson, "pos_embed_max_size", 96), rms, dual);
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(configJson + ": " + e.getMessage(), e);
        }
    }

    private static final Pattern BLOCK = Pattern.compile("^transformer_blocks\\.(\\d+)\\.");

    /**
     * Detects the configuration from diffusers-named tensors (an original file is mapped first, see {@link Sd3KeyMap}).
     * The head width comes from the q-norm weights; a checkpoint without them (SD3 Medium) uses {@link #DEFAULT_HEAD_DIM}.
     * {@code sample_size} is not visible in weights (it only sizes the positional table, which is loaded) and is 128.
     */
    public static Sd3Config detect(StateDict sd) {
        String kind = "SD3 transformer";
        long[] proj = sd.requireShape("pos_embed.proj.weight", 4, kind);            // [D, C, p, p]
        long[] pos = sd.requireShape("pos_embed.pos_embed", 3, kind);               // [1, M², D]
        long[] ctx = sd.requireShape("context_embedder.weight", 2, kind);           // [D, joint]
        long[] text = sd.requireShape("time_text_embed.text_embedder.linear_1.weight", 2, kind);
        long[] out = sd.requireShape("proj_out.weight", 2, kind);                   // [p²·out, D]
        int layers = sd.countIndexed(BLOCK);
        if (layers == 0) throw new ModelFormatException(sd.origin() + ": not a " + kind + " checkpoint: no 'transformer_blocks.N.' tensors");
        int dim = (int) proj[0], patch = (int) proj[2];
        long m = Math.round(Math.sqrt((double) pos[1]));
        if (m * m != pos[1] || pos[2] != dim) {
            throw new ModelFormatException(sd.origin() + ": tensor 'pos_embed.pos_embed' has shape " + java.util.Arrays.toString(pos)
                    + ", expected [1, M*M, " + dim + "] (a square positional table)");
        }
        boolean qk = sd.contains("transformer_blocks.0.attn.norm_q.weight");
        int headDim = qk ? (int) sd.requireShape("transformer_blocks.0.attn.norm_q.weight", 1, kind)[0] : DEFAULT_HEAD_DIM;
        if (headDim <= 0 || dim % headDim != 0) {
            throw new ModelFormatException(sd.origin() + ": head width " + headDim + " does not divide the model width " + dim
                    + (qk ? "" : " (no q/k norms to read it from; SD3 uses " + DEFAULT_HEAD_DIM + ")"));
        }
        if (out[0] % ((long) patch * patch) != 0) {
            throw new ModelFormatException(sd.origin() + ": 'proj_out.weight' has " + out[0] + " rows, not a multiple of patch² = " + patch * patch);
        }
        List<Integer> dual = new ArrayList<>();
        for (int i = 0; i < layers; i++) {
            if (sd.contains("transformer_blocks." + i + ".attn2.to_q.weight")) dual.add(i);
        }
        String lastCtx = "transformer_blocks." + (layers - 1) + ".norm1_context.linear.weight";
        long[] last = sd.requireShape(lastCtx, 2, kind);
        if (last[0] != 2L * dim) {
            throw new ModelFormatException(sd.origin() + ": tensor '" + lastCtx + "' has " + last[0] + " rows, expected " + 2 * dim
                    + " (the last joint block ends the text stream: AdaLayerNormContinuous)");
        }
        try {
            return new Sd3Config(128, patch, (int) proj[1], (int) (out[0] / ((long) patch * patch)), layers, headDim, dim / headDim,
                    (int) ctx[1], dim, (int) text[1], (int) m, qk, dual);
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(sd.origin() + ": " + e.getMessage(), e);
        }
    }

    @Override
    public String toString() {
        return "Sd3Config[layers=" + numLayers + ", heads=" + numAttentionHeads + "x" + attentionHeadDim + ", patch=" + patchSize
                + ", in=" + inChannels + ", out=" + outChannels + ", joint=" + jointAttentionDim + ", pooled=" + pooledProjectionDim
                + ", pos_embed_max_size=" + posEmbedMaxSize + ", qk_norm=" + (qkNorm ? "rms_norm" : "none")
                + ", dual_attention_layers=" + dualAttentionLayers + "]";
    }
}
