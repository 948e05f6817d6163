package io.mmdit4j.text.t5;

import com.fasterxml.jackson.databind.JsonNode;
import io.mmdit4j.io.JsonConfigs;
import io.mmdit4j.io.ModelFormatException;

import java.nio.file.Path;

/**
 * transformers {@code T5Config} fields of an encoder: v1.1 (gated-GELU feed-forward, {@code wi_0}/{@code wi_1}/{@code wo}:
 * FLUX, SD3) or the original T5 ({@code feed_forward_proj "relu"}, {@code wi}/{@code wo}: COSMOS's T5-11B).
 */
public record T5Config(int vocabSize, int dModel, int dKv, int dFf, int numLayers, int numHeads, int relativeAttentionNumBuckets,
                       int relativeAttentionMaxDistance, double layerNormEpsilon, String feedForwardProj) {

    public T5Config {
        if (!feedForwardProj.equals("gated-gelu") && !feedForwardProj.equals("relu")) {
            throw new IllegalArgumentException("feed_forward_proj '" + feedForwardProj + "' is not supported (T5 v1.1 uses gated-gelu, "
                    + "the original T5 relu)");
        }
    }

    /** T5 v1.1 XXL encoder as FLUX.1 and SD3 ship it. */
    public static T5Config xxl() {
        return new T5Config(32128, 4096, 64, 10240, 24, 64, 32, 128, 1e-6, "gated-gelu");
    }

    public static T5Config read(Path configJson) {
        JsonNode c = JsonConfigs.readObject(configJson);
        try {
            return new T5Config(c.path("vocab_size").asInt(32128), req(c, configJson, "d_model"), req(c, configJson, "d_kv"),
                    req(c, configJson, "d_ff"), req(c, configJson, "num_layers"), req(c, configJson, "num_heads"),
                    c.path("relative_attention_num_buckets").asInt(32), c.path("relative_attention_max_distance").asInt(128),
                    c.path("layer_norm_epsilon").asDouble(1e-6), c.path("feed_forward_proj").asText("gated-gelu"));
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(configJson + ": " + e.getMessage(), e);
        }
    }

    private static int req(JsonNode c, Path file, String name) {
        return JsonConfigs.requireInt(c, file, name);
    }

    /** Whether the feed-forward is gated ({@code wi_0}, {@code wi_1}: gated-gelu) rather than {@code relu(wi(x))}. */
    public boolean gated() {
        return feedForwardProj.equals("gated-gelu");
    }

    public int innerDim() {
        return numHeads * dKv;
    }
}
