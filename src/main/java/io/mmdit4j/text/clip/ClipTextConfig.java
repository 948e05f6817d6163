package io.mmdit4j.text.clip;

import com.fasterxml.jackson.databind.JsonNode;
import io.mmdit4j.io.JsonConfigs;
import io.mmdit4j.io.ModelFormatException;

import java.nio.file.Path;

/** transformers {@code CLIPTextConfig} (the fields inference needs), read from a text encoder's config.json. */
public record ClipTextConfig(int vocabSize, int hiddenSize, int intermediateSize, int numHiddenLayers, int numAttentionHeads,
                             int maxPositionEmbeddings, String hiddenAct, int projectionDim, double layerNormEps, int eosTokenId) {

    public ClipTextConfig {
        if (!hiddenAct.equals("quick_gelu") && !hiddenAct.equals("gelu")) {
            throw new IllegalArgumentException("hidden_act '" + hiddenAct + "' is not supported (expected quick_gelu or gelu)");
        }
        if (hiddenSize % numAttentionHeads != 0) {
            throw new IllegalArgumentException("hidden_size " + hiddenSize + " is not a multiple of num_attention_heads " + numAttentionHeads);
        }
    }

    /** OpenAI CLIP ViT-L/14's text tower as FLUX.1 and SD3 ship it. */
    public static ClipTextConfig clipL() {
        return new ClipTextConfig(49408, 768, 3072, 12, 12, 77, "quick_gelu", 768, 1e-5, 2);
    }

    /** OpenCLIP bigG's text tower as SD3 ships it ({@code text_encoder_2}). */
    public static ClipTextConfig clipG() {
        return new ClipTextConfig(49408, 1280, 5120, 32, 20, 77, "gelu", 1280, 1e-5, 2);
    }

    public static ClipTextConfig read(Path configJson) {
        JsonNode c = JsonConfigs.readObject(configJson);
        if (c.has("text_config")) c = c.get("text_config"); // a full CLIPConfig
        try {
            return new ClipTextConfig(c.path("vocab_size").asInt(49408), req(c, configJson, "hidden_size"),
                    req(c, configJson, "intermediate_size"), req(c, configJson, "num_hidden_layers"),
                    req(c, configJson, "num_attention_heads"), c.path("max_position_embeddings").asInt(77),
                    c.path("hidden_act").asText("quick_gelu"), c.path("projection_dim").asInt(0), c.path("layer_norm_eps").asDouble(1e-5),
                    c.path("eos_token_id").asInt(2));
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(configJson + ": " + e.getMessage(), e);
        }
    }

    private static int req(JsonNode c, Path file, String name) {
        return JsonConfigs.requireInt(c, file, name);
    }

    public int headDim() {
        return hiddenSize / numAttentionHeads;
    }
}
