package io.mmdit4j.hidream;

import com.fasterxml.jackson.databind.JsonNode;
import io.mmdit4j.io.JsonConfigs;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.io.StateDict;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.regex.Pattern;

/**
 * {@code HiDreamImageTransformer2DModel} hyper-parameters (diffusers {@code config.json} names): the real HiDream-I1
 * (Fast, Dev and Full share it), reading of a diffusers config, detection from tensor names and shapes, and the checks
 * that tie a config to its checkpoint.
 *
 * @param t5Channels      {@code caption_channels[0]}: the T5 width
 * @param llamaChannels   {@code caption_channels[1]}: the Llama width
 * @param axesDimsRope    RoPE widths per position axis (frame, row, column); their sum is the head width, or half of it
 *                        (then only the first half of every head is rotated)
 * @param maxResolution   {@code max_resolution} in latent pixels: non-square latents are zero-padded to
 *                        {@code maxResolution[0]·maxResolution[1]/patch²} tokens ({@link #maxSeq})
 * @param llamaLayers     one entry per block (double blocks, then single blocks): the Llama hidden state it reads
 */
public record HiDreamConfig(int patchSize, int inChannels, int outChannels, int numLayers, int numSingleLayers, int attentionHeadDim,
                            int numAttentionHeads, int t5Channels, int llamaChannels, int textEmbDim, int numRoutedExperts,
                            int numActivatedExperts, List<Integer> axesDimsRope, List<Integer> maxResolution, List<Integer> llamaLayers) {

    /** The class diffusers writes into the transformer's config.json. */
    public static final String CLASS_NAME = "HiDreamImageTransformer2DModel";
    /** RoPE theta ({@code HiDreamImageEmbedND(theta=10000)}). */
    public static final double ROPE_THETA = 10000.0;
    /** {@code multiple_of} of every SwiGLU width (hard-coded in diffusers). */
    public static final int MULTIPLE_OF = 256;
    /** The head width when a checkpoint without config.json cannot show it (q/k norms span the whole width). */
    public static final int DEFAULT_HEAD_DIM = 128;

    public HiDreamConfig {
        axesDimsRope = List.copyOf(axesDimsRope);
        maxResolution = List.copyOf(maxResolution);
        llamaLayers = List.copyOf(llamaLayers);
        if (patchSize < 1 || inChannels < 1 || outChannels < 1 || attentionHeadDim < 1 || numAttentionHeads < 1 || t5Channels < 1
                || llamaChannels < 1 || textEmbDim < 1) {
            throw new IllegalArgumentException("patch_size, in/out_channels, attention_head_dim, num_attention_heads, caption_channels and "
                    + "text_emb_dim must be >= 1");
        }
        if (numLayers < 0 || numSingleLayers < 0 || numLayers + numSingleLayers < 1) {
            throw new IllegalArgumentException("num_layers " + numLayers + " and num_single_layers " + numSingleLayers + ": at least one block is needed");
        }
        if (numLayers < 1) {
            throw new IllegalArgumentException("num_layers must be >= 1: the text stream of the single blocks comes out of the double blocks");
        }
        if (numRoutedExperts < 0 || (numRoutedExperts > 0 && (numActivatedExperts < 1 || numActivatedExperts > numRoutedExperts))) {
            throw new IllegalArgumentException("num_activated_experts " + numActivatedExperts + " must be in 1.." + numRoutedExperts
                    + " (num_routed_experts)");
        }
        int axes = 0;
        for (int a : axesDimsRope) {
            if (a < 2 || a % 2 != 0) throw new IllegalArgumentException("axes_dims_rope " + axesDimsRope + ": every axis width must be even and >= 2");
            axes += a;
        }
        if (axesDimsRope.size() != 3) throw new IllegalArgumentException("axes_dims_rope " + axesDimsRope + ": expected 3 axes (frame, row, column)");
        if (axes != attentionHeadDim && 2 * axes != attentionHeadDim) {
            throw new IllegalArgumentException("axes_dims_rope " + axesDimsRope + " sum to " + axes + ": the head width " + attentionHeadDim
                    + " must equal the sum (whole head rotated) or twice it (first half rotated)");
        }
        if (maxResolution.size() != 2 || maxResolution.get(0) < 1 || maxResolution.get(1) < 1) {
            throw new IllegalArgumentException("max_resolution " + maxResolution + ": expected two positive latent sizes");
        }
        int blocks = numLayers + numSingleLayers;
        if (llamaLayers.size() != blocks) {
            throw new IllegalArgumentException("llama_layers has " + llamaLayers.size() + " entries, but the model has " + blocks
                    + " blocks (" + numLayers + " double + " + numSingleLayers + " single): one Llama hidden state per block is needed");
        }
        for (int l : llamaLayers) {
            if (l < 0) throw new IllegalArgumentException("llama_layers " + llamaLayers + ": indices must be >= 0");
        }
    }

    /** HiDream-I1 (Full, Dev and Fast): 16 double + 32 single blocks, 20 heads × 128, 4 routed experts (top 2) + a shared one. */
    public static HiDreamConfig i1() {
        List<Integer> llama = new ArrayList<>();
        for (int i = 0; i < 32; i++) llama.add(i);
        llama.addAll(Collections.nCopies(16, 31));
        return new HiDreamConfig(2, 16, 16, 16, 32, 128, 20, 4096, 4096, 2048, 4, 2, List.of(64, 32, 32), List.of(128, 128), llama);
    }

    /** The factory config for a model name ({@code hidream-i1-full}, {@code -dev}, {@code -fast}), or null. */
    public static HiDreamConfig named(String name) {
        return name.startsWith("hidream-i1") && !name.contains("demo") ? i1() : null;
    }

    public int innerDim() {
        return attentionHeadDim * numAttentionHeads;
    }

    public int totalBlocks() {
        return numLayers + numSingleLayers;
    }

    /** Image tokens after padding: {@code max_resolution[0]·max_resolution[1] / patch²} ({@code max_seq}). */
    public int maxSeq() {
        return maxResolution.get(0) * maxResolution.get(1) / (patchSize * patchSize);
    }

    /** Features of one patch token: {@code patch²·in_channels}. */
    public int patchFeatures() {
        return patchSize * patchSize * inChannels;
    }

    /** Sum of the RoPE axis widths: the rotated part of each head. */
    public int ropeDim() {
        return axesDimsRope.stream().mapToInt(Integer::intValue).sum();
    }

    /** The highest Llama hidden state any block reads, plus one: the states a caller must give. */
    public int llamaStatesNeeded() {
        return llamaLayers.stream().mapToInt(Integer::intValue).max().orElse(-1) + 1;
    }

    /** Width of the routed experts and of the text stream's SwiGLU ({@code hidden_dim} argument 4D). */
    public int expertHidden() {
        return swigluHidden(4 * innerDim());
    }

    /** Width of the shared expert ({@code hidden_dim} argument 2D). */
    public int sharedExpertHidden() {
        return swigluHidden(4 * innerDim() / 2);
    }

    /** diffusers' {@code HiDreamImageFeedForwardSwiGLU} width: {@code 256·ceil(int(2·arg/3)/256)}. */
    static int swigluHidden(int arg) {
        int h = (int) (2.0 * arg / 3);
        return MULTIPLE_OF * ((h + MULTIPLE_OF - 1) / MULTIPLE_OF);
    }

    /** Reads a diffusers {@code transformer/config.json}; fields it lacks take diffusers' defaults or the real model's. */
    public static HiDreamConfig fromDiffusersConfig(Path configJson) {
        JsonNode c = JsonConfigs.readObject(configJson);
        JsonConfigs.checkClass(c, configJson, CLASS_NAME);
        try {
            int in = JsonConfigs.intOr(c, configJson, "in_channels", 64);
            JsonNode out = c.get("out_channels");
            int layers = JsonConfigs.intOr(c, configJson, "num_layers", 16), singles = JsonConfigs.intOr(c, configJson, "num_single_layers", 32);
            List<Integer> caption = ints(c.get("caption_channels"), configJson, "caption_channels");
            if (caption == null || caption.size() != 2) {
                throw new IllegalArgumentException("caption_channels must be [T5 width, Llama width], found " + c.get("caption_channels"));
            }
            List<Integer> llama = ints(c.get("llama_layers"), configJson, "llama_layers");
            if (llama == null) throw new IllegalArgumentException("llama_layers is missing (one Llama hidden state per block)");
            List<Integer> axes = ints(c.get("axes_dims_rope"), configJson, "axes_dims_rope");
            List<Integer> maxRes = ints(c.get("max_resolution"), configJson, "max_resolution");
            return new HiDreamConfig(JsonConfigs.intOr(c, configJson, "patch_size", 2), in,
                    out == null || out.isNull() ? in : JsonConfigs.intOr(c, configJson, "out_channels", in), layers, singles,
                    JsonConfigs.intOr(c, configJson, "attention_head_dim", 128), JsonConfigs.intOr(c, configJson, "num_attention_heads", 20),
                    caption.get(0), caption.get(1), JsonConfigs.intOr(c, configJson, "text_emb_dim", 2048),
                    JsonConfigs.intOr(c, configJson, "num_routed_experts", 4), JsonConfigs.intOr(c, configJson, "num_activated_experts", 2),
                    axes != null ? axes : List.of(32, 32), maxRes != null ? maxRes : List.of(128, 128), llama);
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(configJson + ": " + e.getMessage(), e);
        }
    }

    private static List<Integer> ints(JsonNode n, Path origin, String name) {
        if (n == null || n.isNull()) return null;
        if (!n.isArray()) throw new ModelFormatException(origin + ": " + name + " must be a list of integers, found " + n);
        List<Integer> out = new ArrayList<>();
        for (JsonNode i : n) {
            if (!i.isIntegralNumber()) throw new ModelFormatException(origin + ": " + name + " must hold integers, found " + i);
            out.add(i.asInt());
        }
        return out;
    }

    private static final Pattern DOUBLE = Pattern.compile("^double_stream_blocks\\.(\\d+)\\.");
    private static final Pattern SINGLE = Pattern.compile("^single_stream_blocks\\.(\\d+)\\.");
    private static final Pattern EXPERT = Pattern.compile("^double_stream_blocks\\.0\\.block\\.ff_i\\.experts\\.(\\d+)\\.");
    private static final Pattern SINGLE_EXPERT = Pattern.compile("^single_stream_blocks\\.0\\.block\\.ff_i\\.experts\\.(\\d+)\\.");

    /** Whether diffusers-named tensors are a HiDream transformer's. */
    public static boolean recognizes(java.util.Set<String> keys) {
        return keys.contains("p_embedder.pooled_embedder.linear_1.weight") && keys.stream().anyMatch(k -> k.startsWith("double_stream_blocks."));
    }

    /**
     * Detects the configuration from diffusers-named tensors. What the weights cannot show takes the real HiDream-I1's
     * values: patch 2, head width {@link #DEFAULT_HEAD_DIM}, top-2 routing, RoPE axes (64, 32, 32), max_resolution
     * (128, 128), and llama_layers {@code [0..31, 31 × 16]} (only for a 48-block model; any other depth needs config.json).
     */
    public static HiDreamConfig detect(StateDict sd) {
        String kind = "HiDream transformer";
        long[] x = sd.requireShape("x_embedder.proj.weight", 2, kind);                              // [D, p²·in]
        long[] pooled = sd.requireShape("p_embedder.pooled_embedder.linear_1.weight", 2, kind);    // [D, text_emb_dim]
        long[] out = sd.requireShape("final_layer.linear.weight", 2, kind);                         // [p²·out, D]
        int layers = sd.countIndexed(DOUBLE), singles = sd.countIndexed(SINGLE);
        if (layers == 0) throw new ModelFormatException(sd.origin() + ": not a " + kind + " checkpoint: no 'double_stream_blocks.N.' tensors");
        int blocks = layers + singles;
        long[] llama = sd.requireShape("caption_projection.0.linear.weight", 2, kind);             // [D, Llama width]
        long[] t5 = sd.requireShape("caption_projection." + blocks + ".linear.weight", 2, kind);   // [D, T5 width]
        int dim = (int) x[0], patch = 2;
        if (dim % DEFAULT_HEAD_DIM != 0) {
            throw new ModelFormatException(sd.origin() + ": the model width " + dim + " is not a multiple of the head width " + DEFAULT_HEAD_DIM
                    + " (a checkpoint without config.json cannot show another; add config.json)");
        }
        if (x[1] % (patch * patch) != 0 || out[0] % (patch * patch) != 0) {
            throw new ModelFormatException(sd.origin() + ": x_embedder / final_layer widths " + x[1] + " / " + out[0]
                    + " are not multiples of patch² = 4");
        }
        int experts = Math.max(sd.countIndexed(EXPERT), sd.countIndexed(SINGLE_EXPERT));
        if (blocks != 48) {
            throw new ModelFormatException(sd.origin() + ": a HiDream transformer with " + blocks + " blocks needs its config.json "
                    + "(llama_layers cannot be read from the weights)");
        }
        HiDreamConfig real = i1();
        try {
            return new HiDreamConfig(patch, (int) (x[1] / 4), (int) (out[0] / 4), layers, singles, DEFAULT_HEAD_DIM, dim / DEFAULT_HEAD_DIM,
                    (int) t5[1], (int) llama[1], (int) pooled[1], experts, experts == 0 ? 0 : Math.min(2, experts), real.axesDimsRope,
                    real.maxResolution, real.llamaLayers);
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(sd.origin() + ": " + e.getMessage(), e);
        }
    }

    /**
     * Checks this config against a checkpoint's tensors (block counts, widths, experts), so that a config/weights mismatch
     * is reported as such rather than as one wrong tensor.
     */
    public void checkAgainst(StateDict sd) {
        if (sd.isRecording()) return;
        String kind = "HiDream transformer";
        long[] x = sd.requireShape("x_embedder.proj.weight", 2, kind);
        int layers = sd.countIndexed(DOUBLE), singles = sd.countIndexed(SINGLE);
        if (layers != numLayers || singles != numSingleLayers) {
            throw new ModelFormatException(sd.origin() + ": the checkpoint has " + layers + " double and " + singles
                    + " single blocks, but the config says num_layers " + numLayers + " and num_single_layers " + numSingleLayers);
        }
        if (x[0] != innerDim() || x[1] != patchFeatures()) {
            throw new ModelFormatException(sd.origin() + ": 'x_embedder.proj.weight' has shape " + Arrays.toString(x) + ", but the config says "
                    + numAttentionHeads + " heads × " + attentionHeadDim + " = " + innerDim() + " wide and " + patchFeatures() + " patch features");
        }
        int experts = Math.max(sd.countIndexed(EXPERT), sd.countIndexed(SINGLE_EXPERT));
        if (experts != numRoutedExperts) {
            throw new ModelFormatException(sd.origin() + ": the checkpoint has " + experts + " routed experts per block, but the config says "
                    + "num_routed_experts " + numRoutedExperts);
        }
        int projections = sd.countIndexed(Pattern.compile("^caption_projection\\.(\\d+)\\."));
        if (projections != totalBlocks() + 1) {
            throw new ModelFormatException(sd.origin() + ": the checkpoint has " + projections + " caption projections, expected "
                    + (totalBlocks() + 1) + " (one per block, then T5's)");
        }
    }

    @Override
    public String toString() {
        return "HiDreamConfig[layers=" + numLayers + "+" + numSingleLayers + ", heads=" + numAttentionHeads + "x" + attentionHeadDim
                + ", patch=" + patchSize + ", in=" + inChannels + ", out=" + outChannels + ", caption=[" + t5Channels + ", " + llamaChannels
                + "], text_emb=" + textEmbDim + ", experts=" + numRoutedExperts + " top-" + numActivatedExperts + ", axes=" + axesDimsRope
                + ", max_resolution=" + maxResolution + ", llama_layers=" + llamaLayers + "]";
    }
}
