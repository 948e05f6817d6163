package io.mmdit4j.text.llama;

import com.fasterxml.jackson.databind.JsonNode;
import io.mmdit4j.io.JsonConfigs;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.io.StateDict;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.regex.Pattern;

/**
 * transformers {@code LlamaConfig}: the fields the decoder stack needs, read from a text encoder's config.json
 * (a LLaVA config's {@code text_config} is accepted too).
 *
 * @param headDim        {@code head_dim} when the config names it, else {@code hidden_size / num_attention_heads}
 * @param ropeScaling    null for plain RoPE ({@code rope_scaling: null} or {@code rope_type: "default"})
 */
public record LlamaConfig(int vocabSize, int hiddenSize, int intermediateSize, int numHiddenLayers, int numAttentionHeads,
                          int numKeyValueHeads, int headDim, double rmsNormEps, double ropeTheta, RopeScaling ropeScaling,
                          int maxPositionEmbeddings, boolean attentionBias, boolean mlpBias) {

    /**
     * The supported {@code rope_scaling} variants: {@code linear} (positions divided by {@code factor}) and
     * {@code llama3} (Llama 3.1's per-frequency interpolation, used by HiDream's Llama-3.1 encoder).
     */
    public record RopeScaling(String type, double factor, double lowFreqFactor, double highFreqFactor, int originalMaxPositionEmbeddings) {
        public RopeScaling {
            if (!type.equals("linear") && !type.equals("llama3")) {
                throw new IllegalArgumentException("rope_scaling type '" + type + "' is not supported (supported: none/default, linear, llama3)");
            }
            if (!(factor > 0)) throw new IllegalArgumentException("rope_scaling factor must be > 0, got " + factor);
            if (type.equals("llama3") && (!(highFreqFactor > lowFreqFactor) || originalMaxPositionEmbeddings <= 0)) {
                throw new IllegalArgumentException("llama3 rope_scaling needs high_freq_factor > low_freq_factor and original_max_position_embeddings > 0");
            }
        }

        public static RopeScaling linear(double factor) {
            return new RopeScaling("linear", factor, 0, 0, 0);
        }
    }

    public LlamaConfig {
        if (vocabSize < 1 || hiddenSize < 1 || intermediateSize < 1 || numHiddenLayers < 1 || numAttentionHeads < 1
                || numKeyValueHeads < 1 || headDim < 1 || maxPositionEmbeddings < 1) {
            throw new IllegalArgumentException("sizes must be positive: vocab " + vocabSize + ", hidden " + hiddenSize + ", intermediate "
                    + intermediateSize + ", layers " + numHiddenLayers + ", heads " + numAttentionHeads + ", kv heads " + numKeyValueHeads
                    + ", head_dim " + headDim + ", max positions " + maxPositionEmbeddings);
        }
        if (numAttentionHeads % numKeyValueHeads != 0) {
            throw new IllegalArgumentException("num_attention_heads " + numAttentionHeads + " is not a multiple of num_key_value_heads " + numKeyValueHeads);
        }
        if (headDim % 2 != 0) throw new IllegalArgumentException("head_dim must be even for rotary embeddings, got " + headDim);
        if (!(rmsNormEps > 0)) throw new IllegalArgumentException("rms_norm_eps must be > 0, got " + rmsNormEps);
        if (!(ropeTheta > 0)) throw new IllegalArgumentException("rope_theta must be > 0, got " + ropeTheta);
    }

    /**
     * HunyuanVideo's text encoder: the language model of {@code xtuner/llava-llama-3-8b-v1_1} (Llama-3-8B, GQA 32/8 heads,
     * θ = 500000). The vocabulary is 128320 in the LLaVA checkpoint (128256 + added tokens) <b>(verify against the shipped config.json)</b>.
     */
    public static LlamaConfig llavaLlama3_8b() {
        return new LlamaConfig(128320, 4096, 14336, 32, 32, 8, 128, 1e-5, 500000.0, null, 8192, false, false);
    }

    public static LlamaConfig read(Path configJson) {
        JsonNode c = JsonConfigs.readObject(configJson);
        if (c.has("text_config") && c.get("text_config").isObject()) c = c.get("text_config"); // LlavaConfig
        return fromJson(c, configJson);
    }

    public static LlamaConfig fromJson(JsonNode c, Object origin) {
        String modelType = c.path("model_type").asText("llama");
        if (!modelType.equals("llama")) {
            throw new ModelFormatException(origin + ": model_type is '" + modelType + "', expected llama");
        }
        String act = c.path("hidden_act").asText("silu");
        if (!act.equals("silu")) throw new ModelFormatException(origin + ": hidden_act '" + act + "' is not supported (expected silu)");
        if (JsonConfigs.intOr(c, origin, "pretraining_tp", 1) != 1) {
            throw new ModelFormatException(origin + ": pretraining_tp > 1 is not supported");
        }
        try {
            int hidden = JsonConfigs.requireInt(c, origin, "hidden_size");
            int heads = JsonConfigs.requireInt(c, origin, "num_attention_heads");
            if (hidden % heads != 0 && !c.hasNonNull("head_dim")) {
                throw new IllegalArgumentException("hidden_size " + hidden + " is not a multiple of num_attention_heads " + heads);
            }
            return new LlamaConfig(JsonConfigs.requireInt(c, origin, "vocab_size"), hidden,
                    JsonConfigs.requireInt(c, origin, "intermediate_size"), JsonConfigs.requireInt(c, origin, "num_hidden_layers"), heads,
                    JsonConfigs.intOr(c, origin, "num_key_value_heads", heads), JsonConfigs.intOr(c, origin, "head_dim", hidden / heads),
                    JsonConfigs.doubleOr(c, origin, "rms_norm_eps", 1e-6), JsonConfigs.doubleOr(c, origin, "rope_theta", 10000.0),
                    ropeScaling(c.get("rope_scaling"), origin), JsonConfigs.intOr(c, origin, "max_position_embeddings", 2048),
                    JsonConfigs.boolOr(c, origin, "attention_bias", false), JsonConfigs.boolOr(c, origin, "mlp_bias", false));
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(origin + ": " + e.getMessage(), e);
        }
    }

    private static RopeScaling ropeScaling(JsonNode s, Object origin) {
        if (s == null || s.isNull()) return null;
        if (!s.isObject()) throw new ModelFormatException(origin + ": rope_scaling must be an object or null, found " + s);
        String type = s.hasNonNull("rope_type") ? s.get("rope_type").asText() : s.path("type").asText("");
        type = type.toLowerCase(Locale.ROOT);
        if (type.equals("default")) return null;
        if (!type.equals("linear") && !type.equals("llama3")) {
            throw new ModelFormatException(origin + ": rope_scaling type '" + type + "' is not supported (supported: none/default, linear, llama3)");
        }
        return new RopeScaling(type, JsonConfigs.doubleOr(s, origin, "factor", Double.NaN), JsonConfigs.doubleOr(s, origin, "low_freq_factor", 1.0),
                JsonConfigs.doubleOr(s, origin, "high_freq_factor", 4.0), JsonConfigs.intOr(s, origin, "original_max_position_embeddings", 8192));
    }

    private static final Pattern LAYER = Pattern.compile("layers\\.(\\d+)\\.");

    /**
     * Checks the config against a checkpoint's tensors under {@code prefix} (layer count, embedding and projection
     * shapes), so that a config/weights mismatch is reported as such rather than as one wrong tensor.
     */
    public void checkAgainst(StateDict sd, String prefix) {
        long[] embed = sd.requireShape(prefix + "embed_tokens.weight", 2, "Llama");
        if (embed[0] != vocabSize || embed[1] != hiddenSize) {
            throw new ModelFormatException(sd.origin() + ": '" + prefix + "embed_tokens.weight' has shape " + Arrays.toString(embed)
                    + ", but the config says vocab_size " + vocabSize + " and hidden_size " + hiddenSize);
        }
        int layers = sd.countIndexed(Pattern.compile("^" + Pattern.quote(prefix) + LAYER.pattern()));
        if (layers != numHiddenLayers) {
            throw new ModelFormatException(sd.origin() + ": the checkpoint has " + layers + " decoder layers, but the config says num_hidden_layers "
                    + numHiddenLayers);
        }
        long[] k = sd.requireShape(prefix + "layers.0.self_attn.k_proj.weight", 2, "Llama");
        if (k[0] != (long) numKeyValueHeads * headDim) {
            throw new ModelFormatException(sd.origin() + ": '" + prefix + "layers.0.self_attn.k_proj.weight' has shape " + Arrays.toString(k)
                    + ", but the config says num_key_value_heads " + numKeyValueHeads + " × head_dim " + headDim);
        }
    }

    /** Query heads per key/value head (1 without grouped-query attention). */
    public int groups() {
        return numAttentionHeads / numKeyValueHeads;
    }
}
