package io.mmdit4j.flux;

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
 * {@code FluxTransformer2DModel} hyper-parameters (diffusers {@code config.json} names). Named factories for
 * the released models, reading of a diffusers config, and detection from a checkpoint's tensor names and
 * shapes (original Black Forest Labs files carry no config).
 */
public record FluxConfig(int inChannels, int outChannels, int numLayers, int numSingleLayers, int attentionHeadDim,
                         int numAttentionHeads, int jointAttentionDim, int pooledProjectionDim, boolean guidanceEmbeds,
                         int[] axesDimsRope, int mlpHidden) {

    public static final double ROPE_THETA = 10000.0;

    public FluxConfig {
        if (axesDimsRope == null || Arrays.stream(axesDimsRope).sum() != attentionHeadDim) {
            throw new IllegalArgumentException("axes_dims_rope " + Arrays.toString(axesDimsRope)
                    + " must sum to attention_head_dim " + attentionHeadDim);
        }
        axesDimsRope = axesDimsRope.clone();
    }

    /** FLUX.1-schnell: 19 double + 38 single blocks, D 3072, no guidance embedder. */
    public static FluxConfig schnell() {
        return new FluxConfig(64, 64, 19, 38, 128, 24, 4096, 768, false, new int[] {16, 56, 56}, 4 * 3072);
    }

    /** FLUX.1-dev: as schnell plus the embedded-guidance MLP. */
    public static FluxConfig dev() {
        return schnell().withGuidanceEmbeds(true);
    }

    public FluxConfig withGuidanceEmbeds(boolean on) {
        return new FluxConfig(inChannels, outChannels, numLayers, numSingleLayers, attentionHeadDim, numAttentionHeads,
                jointAttentionDim, pooledProjectionDim, on, axesDimsRope, mlpHidden);
    }

    public FluxConfig withAxesDimsRope(int[] axes) {
        return new FluxConfig(inChannels, outChannels, numLayers, numSingleLayers, attentionHeadDim, numAttentionHeads,
                jointAttentionDim, pooledProjectionDim, guidanceEmbeds, axes, mlpHidden);
    }

    public int innerDim() {
        return attentionHeadDim * numAttentionHeads;
    }

    /** Global block count for guidance schedules: double blocks then single blocks. */
    public int totalBlocks() {
        return numLayers + numSingleLayers;
    }

    /** Reads a diffusers {@code transformer/config.json}. */
    public static FluxConfig fromDiffusersConfig(Path configJson) {
        JsonNode c = JsonConfigs.readObject(configJson);
        JsonConfigs.checkClass(c, configJson, "FluxTransformer2DModel");
        int in = JsonConfigs.intOr(c, configJson, "in_channels", 64);
        int heads = JsonConfigs.intOr(c, configJson, "num_attention_heads", 24);
        int headDim = JsonConfigs.intOr(c, configJson, "attention_head_dim", 128);
        int[] axes = new int[] {16, 56, 56};
        if (c.has("axes_dims_rope")) {
            JsonNode a = c.get("axes_dims_rope");
            axes = new int[a.size()];
            for (int i = 0; i < axes.length; i++) axes[i] = a.get(i).asInt();
        }
        if (JsonConfigs.intOr(c, configJson, "patch_size", 1) != 1) {
            throw new ModelFormatException(configJson + ": patch_size " + c.get("patch_size") + " is not supported (FLUX uses 1)");
        }
        JsonNode out = c.get("out_channels");
        try {
            return new FluxConfig(in, out == null || out.isNull() ? in : out.asInt(), JsonConfigs.intOr(c, configJson, "num_layers", 19),
                    JsonConfigs.intOr(c, configJson, "num_single_layers", 38), headDim, heads, JsonConfigs.intOr(c, configJson, "joint_attention_dim", 4096),
                    JsonConfigs.intOr(c, configJson, "pooled_projection_dim", 768), c.path("guidance_embeds").asBoolean(false), axes,
                    4 * headDim * heads);
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(configJson + ": " + e.getMessage(), e);
        }
    }

    /** This configuration as a diffusers {@code transformer/config.json} ({@link #fromDiffusersConfig} reads it back equal). */
    public String toDiffusersConfigJson() {
        if (mlpHidden != 4 * innerDim()) throw new IllegalStateException("diffusers' config has no MLP width: " + mlpHidden + " != 4 x " + innerDim());
        com.fasterxml.jackson.databind.ObjectMapper m = new com.fasterxml.jackson.databind.ObjectMapper();
        com.fasterxml.jackson.databind.node.ObjectNode c = m.createObjectNode().put("_class_name", "FluxTransformer2DModel").put("patch_size", 1)
                .put("in_channels", inChannels).put("out_channels", outChannels).put("num_layers", numLayers).put("num_single_layers", numSingleLayers)
                .put("attention_head_dim", attentionHeadDim).put("num_attention_heads", numAttentionHeads).put("joint_attention_dim", jointAttentionDim)
                .put("pooled_projection_dim", pooledProjectionDim).put("guidance_embeds", guidanceEmbeds);
        com.fasterxml.jackson.databind.node.ArrayNode axes = c.putArray("axes_dims_rope");
        for (int a : axesDimsRope) axes.add(a);
        try {
            return m.writerWithDefaultPrettyPrinter().writeValueAsString(c) + "\n";
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    private static final Pattern DOUBLE = Pattern.compile("^transformer_blocks\\.(\\d+)\\.");
    private static final Pattern SINGLE = Pattern.compile("^single_transformer_blocks\\.(\\d+)\\.");

    /**
     * Detects the configuration from diffusers-named tensors (an original BFL file is mapped first, see
     * {@link FluxKeyMap}). RoPE axis widths are not visible in weights: {@code axesDims} gives them, or null
     * for FLUX's split of the head dimension (1/8, 7/16, 7/16; 16/56/56 at 128).
     */
    public static FluxConfig detect(StateDict sd, int[] axesDims) {
        long[] x = sd.requireShape("x_embedder.weight", 2, "FLUX transformer");
        long[] ctx = sd.requireShape("context_embedder.weight", 2, "FLUX transformer");
        long[] text = sd.requireShape("time_text_embed.text_embedder.linear_1.weight", 2, "FLUX transformer");
        long[] proj = sd.requireShape("proj_out.weight", 2, "FLUX transformer");
        int doubles = sd.countIndexed(DOUBLE);
        int singles = sd.countIndexed(SINGLE);
        String qNormKey = doubles > 0 ? "transformer_blocks.0.attn.norm_q.weight" : "single_transformer_blocks.0.attn.norm_q.weight";
        long[] qNorm = sd.requireShape(qNormKey, 1, "FLUX transformer");
        int dim = (int) x[0];
        int headDim = (int) qNorm[0];
        if (headDim <= 0 || dim % headDim != 0) {
            throw new ModelFormatException(sd.origin() + ": '" + qNormKey + "' has " + headDim
                    + " entries, which does not divide the model width " + dim);
        }
        long[] mlp = doubles > 0 ? sd.requireShape("transformer_blocks.0.ff.net.0.proj.weight", 2, "FLUX transformer")
                : sd.requireShape("single_transformer_blocks.0.proj_mlp.weight", 2, "FLUX transformer");
        int[] axes = axesDims != null ? axesDims : Rope.defaultAxes(headDim);
        if (axes == null) {
            throw new ModelFormatException(sd.origin() + ": cannot infer RoPE axes_dims for head dim " + headDim
                    + "; pass them explicitly (e.g. a bfl_params.json with \"axes_dim\" beside the file)");
        }
        boolean guidance = sd.contains("time_text_embed.guidance_embedder.linear_1.weight");
        try {
            return new FluxConfig((int) x[1], (int) proj[0], doubles, singles, headDim, dim / headDim, (int) ctx[1], (int) text[1],
                    guidance, axes, (int) mlp[0]);
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(sd.origin() + ": " + e.getMessage(), e);
        }
    }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof FluxConfig c)) return false;
        return inChannels == c.inChannels && outChannels == c.outChannels && numLayers == c.numLayers
                && numSingleLayers == c.numSingleLayers && attentionHeadDim == c.attentionHeadDim
                && numAttentionHeads == c.numAttentionHeads && jointAttentionDim == c.jointAttentionDim
                && pooledProjectionDim == c.pooledProjectionDim && guidanceEmbeds == c.guidanceEmbeds
                && Arrays.equals(axesDimsRope, c.axesDimsRope) && mlpHidden == c.mlpHidden;
    }

    @Override
    public int hashCode() {
        return Objects.hash(inChannels, outChannels, numLayers, numSingleLayers, attentionHeadDim, numAttentionHeads,
                jointAttentionDim, pooledProjectionDim, guidanceEmbeds, Arrays.hashCode(axesDimsRope), mlpHidden);
    }

    @Override
    public String toString() {
        return "FluxConfig[in=" + inChannels + ", out=" + outChannels + ", double=" + numLayers + ", single=" + numSingleLayers
                + ", heads=" + numAttentionHeads + "x" + attentionHeadDim + ", joint=" + jointAttentionDim + ", pooled="
                + pooledProjectionDim + ", guidance=" + guidanceEmbeds + ", axes=" + Arrays.toString(axesDimsRope)
                + ", mlp=" + mlpHidden + "]";
    }
}
