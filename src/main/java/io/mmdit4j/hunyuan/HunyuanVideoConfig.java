package io.mmdit4j.hunyuan;

import com.fasterxml.jackson.databind.JsonNode;
import io.mmdit4j.io.JsonConfigs;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.io.StateDict;
import io.mmdit4j.nn.Rope;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Objects;
import java.util.regex.Pattern;

/**
 * {@code HunyuanVideoTransformer3DModel} hyper-parameters (diffusers {@code config.json} names): the shipped
 * configuration, reading of a diffusers config, and detection from a checkpoint's tensor names and shapes
 * (original HunyuanVideo files carry no config; map them with {@link HunyuanVideoKeyMap} first).
 *
 * @param mlpHidden hidden width of every MLP ({@code int(D · mlp_ratio)}), the token refiner's included
 */
public record HunyuanVideoConfig(int inChannels, int outChannels, int numAttentionHeads, int attentionHeadDim, int numLayers,
                                 int numSingleLayers, int numRefinerLayers, int mlpHidden, int patchSize, int patchSizeT,
                                 boolean guidanceEmbeds, int textEmbedDim, int pooledProjectionDim, double ropeTheta,
                                 int[] ropeAxesDim) {

    public HunyuanVideoConfig {
        if (ropeAxesDim == null || ropeAxesDim.length != 3 || Arrays.stream(ropeAxesDim).sum() != attentionHeadDim) {
            throw new IllegalArgumentException("rope_axes_dim " + Arrays.toString(ropeAxesDim)
                    + " must be three widths (t, h, w) summing to attention_head_dim " + attentionHeadDim);
        }
        for (int a : ropeAxesDim) {
            if (a <= 0 || a % 2 != 0) throw new IllegalArgumentException("rope_axes_dim " + Arrays.toString(ropeAxesDim) + " must be positive and even");
        }
        if (patchSize < 1 || patchSizeT < 1) throw new IllegalArgumentException("patch sizes must be >= 1, got " + patchSizeT + "x" + patchSize);
        if (numAttentionHeads < 1 || attentionHeadDim < 1) throw new IllegalArgumentException("heads and head dim must be >= 1");
        ropeAxesDim = ropeAxesDim.clone();
    }

    /** The released HunyuanVideo transformer: 20 dual + 40 single blocks, 2 refiner blocks, 24 × 128 heads (D 3072). */
    public static HunyuanVideoConfig hunyuanVideo() {
        return new HunyuanVideoConfig(16, 16, 24, 128, 20, 40, 2, 4 * 3072, 2, 1, true, 4096, 768, 256.0, new int[] {16, 56, 56});
    }

    public int innerDim() {
        return numAttentionHeads * attentionHeadDim;
    }

    /** Global block count for guidance schedules: dual-stream blocks then single-stream blocks. */
    public int totalBlocks() {
        return numLayers + numSingleLayers;
    }

    /** Values per output token: {@code out_channels · patch_t · patch · patch}. */
    public int patchValues() {
        return outChannels * patchSizeT * patchSize * patchSize;
    }

    /** Reads a diffusers {@code transformer/config.json}. */
    public static HunyuanVideoConfig fromDiffusersConfig(Path configJson) {
        JsonNode c = JsonConfigs.readObject(configJson);
        JsonConfigs.checkClass(c, configJson, "HunyuanVideoTransformer3DModel");
        String qkNorm = c.path("qk_norm").asText("rms_norm");
        if (!qkNorm.equals("rms_norm")) throw new ModelFormatException(configJson + ": qk_norm '" + qkNorm + "' is not supported (rms_norm only)");
        if (c.hasNonNull("image_condition_type")) {
            throw new ModelFormatException(configJson + ": image_condition_type " + c.get("image_condition_type") + " (image-to-video) is not supported");
        }
        int heads = JsonConfigs.intOr(c, configJson, "num_attention_heads", 24);
        int headDim = JsonConfigs.intOr(c, configJson, "attention_head_dim", 128);
        int in = JsonConfigs.intOr(c, configJson, "in_channels", 16);
        JsonNode out = c.get("out_channels");
        double ratio = JsonConfigs.doubleOr(c, configJson, "mlp_ratio", 4.0);
        int[] axes = {16, 56, 56};
        JsonNode a = c.get("rope_axes_dim");
        if (a != null && a.isArray()) {
            axes = new int[a.size()];
            for (int i = 0; i < axes.length; i++) axes[i] = a.get(i).asInt();
        }
        try {
            return new HunyuanVideoConfig(in, out == null || out.isNull() ? in : out.asInt(), heads, headDim,
                    JsonConfigs.intOr(c, configJson, "num_layers", 20), JsonConfigs.intOr(c, configJson, "num_single_layers", 40),
                    JsonConfigs.intOr(c, configJson, "num_refiner_layers", 2), (int) (heads * headDim * ratio),
                    JsonConfigs.intOr(c, configJson, "patch_size", 2), JsonConfigs.intOr(c, configJson, "patch_size_t", 1),
                    JsonConfigs.boolOr(c, configJson, "guidance_embeds", true), JsonConfigs.intOr(c, configJson, "text_embed_dim", 4096),
                    JsonConfigs.intOr(c, configJson, "pooled_projection_dim", 768), JsonConfigs.doubleOr(c, configJson, "rope_theta", 256.0), axes);
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(configJson + ": " + e.getMessage(), e);
        }
    }

    private static final Pattern DUAL = Pattern.compile("^transformer_blocks\\.(\\d+)\\.");
    private static final Pattern SINGLE = Pattern.compile("^single_transformer_blocks\\.(\\d+)\\.");
    private static final Pattern REFINER = Pattern.compile("^context_embedder\\.token_refiner\\.refiner_blocks\\.(\\d+)\\.");
    private static final String KIND = "HunyuanVideo transformer";

    /**
     * Detects the configuration from diffusers-named tensors. RoPE axis widths and theta are not visible in
     * weights: {@code ropeAxesDim} gives them, or null for HunyuanVideo's split of the head dimension
     * (1/8, 7/16, 7/16; 16/56/56 at 128); theta is 256.
     */
    public static HunyuanVideoConfig detect(StateDict sd, int[] ropeAxesDim) {
        long[] x = sd.requireShape("x_embedder.proj.weight", 5, KIND);
        long[] proj = sd.requireShape("proj_out.weight", 2, KIND);
        long[] text = sd.requireShape("context_embedder.proj_in.weight", 2, KIND);
        long[] pooled = sd.requireShape("time_text_embed.text_embedder.linear_1.weight", 2, KIND);
        int duals = sd.countIndexed(DUAL), singles = sd.countIndexed(SINGLE), refiners = sd.countIndexed(REFINER);
        String qNormKey = duals > 0 ? "transformer_blocks.0.attn.norm_q.weight" : "single_transformer_blocks.0.attn.norm_q.weight";
        long[] qNorm = sd.requireShape(qNormKey, 1, KIND);
        String mlpKey = duals > 0 ? "transformer_blocks.0.ff.net.0.proj.weight" : singles > 0 ? "single_transformer_blocks.0.proj_mlp.weight"
                : "context_embedder.token_refiner.refiner_blocks.0.ff.net.0.proj.weight";
        long[] mlp = sd.requireShape(mlpKey, 2, KIND);
        int dim = (int) x[0], headDim = (int) qNorm[0];
        if (headDim <= 0 || dim % headDim != 0) {
            throw new ModelFormatException(sd.origin() + ": '" + qNormKey + "' has " + headDim + " entries, which does not divide the model width " + dim);
        }
        if (x[2] < 1 || x[3] != x[4]) {
            throw new ModelFormatException(sd.origin() + ": 'x_embedder.proj.weight' has shape " + Arrays.toString(x)
                    + ", expected [D, C, patch_t, patch, patch]");
        }
        long perToken = x[2] * x[3] * x[4];
        if (proj[0] % perToken != 0) {
            throw new ModelFormatException(sd.origin() + ": 'proj_out.weight' has " + proj[0] + " rows, not a multiple of patch_t·patch·patch = " + perToken);
        }
        int[] axes = ropeAxesDim != null ? ropeAxesDim : Rope.defaultAxes(headDim);
        if (axes == null) throw new ModelFormatException(sd.origin() + ": cannot infer rope_axes_dim for head dim " + headDim + "; give them explicitly");
        try {
            return new HunyuanVideoConfig((int) x[1], (int) (proj[0] / perToken), dim / headDim, headDim, duals, singles, refiners, (int) mlp[0],
                    (int) x[3], (int) x[2], sd.contains("time_text_embed.guidance_embedder.linear_1.weight"), (int) text[1], (int) pooled[1],
                    256.0, axes);
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(sd.origin() + ": " + e.getMessage(), e);
        }
    }

    public HunyuanVideoConfig withRopeAxesDim(int[] axes) {
        return new HunyuanVideoConfig(inChannels, outChannels, numAttentionHeads, attentionHeadDim, numLayers, numSingleLayers, numRefinerLayers,
                mlpHidden, patchSize, patchSizeT, guidanceEmbeds, textEmbedDim, pooledProjectionDim, ropeTheta, axes);
    }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof HunyuanVideoConfig c)) return false;
        return inChannels == c.inChannels && outChannels == c.outChannels && numAttentionHeads == c.numAttentionHeads
                && attentionHeadDim == c.attentionHeadDim && numLayers == c.numLayers && numSingleLayers == c.numSingleLayers
                && numRefinerLayers == c.numRefinerLayers && mlpHidden == c.mlpHidden && patchSize == c.patchSize
                && patchSizeT == c.patchSizeT && guidanceEmbeds == c.guidanceEmbeds && textEmbedDim == c.textEmbedDim
                && pooledProjectionDim == c.pooledProjectionDim && Double.compare(ropeTheta, c.ropeTheta) == 0
                && Arrays.equals(ropeAxesDim, c.ropeAxesDim);
    }

    @Override
    public int hashCode() {
        return Objects.hash(inChannels, outChannels, numAttentionHeads, attentionHeadDim, numLayers, numSingleLayers, numRefinerLayers,
                mlpHidden, patchSize, patchSizeT, guidanceEmbeds, textEmbedDim, pooledProjectionDim, ropeTheta, Arrays.hashCode(ropeAxesDim));
    }

    @Override
    public String toString() {
        return "HunyuanVideoConfig[in=" + inChannels + ", out=" + outChannels + ", dual=" + numLayers + ", single=" + numSingleLayers
                + ", refiner=" + numRefinerLayers + ", heads=" + numAttentionHeads + "x" + attentionHeadDim + ", mlp=" + mlpHidden
                + ", patch=" + patchSizeT + "x" + patchSize + "x" + patchSize + ", guidance=" + guidanceEmbeds + ", text=" + textEmbedDim
                + ", pooled=" + pooledProjectionDim + ", rope_theta=" + ropeTheta + ", axes=" + Arrays.toString(ropeAxesDim) + "]";
    }
}
