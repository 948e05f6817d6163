package io.mmdit4j.models;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.mmdit4j.io.ModelFormatException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A supported model as {@code models/<name>.json} describes it: family, variant, where its files come from,
 * sampler defaults (the keys of the settings record), the guidance recommendation for any direction ({@code guidance}:
 * {@code w}, {@code layers}) and the directions recommended for this model ({@code recommended_guidance}, which take the
 * place of the presets of the same name).
 */
public record ModelDescriptor(Path file, String name, String family, String variant, String description, JsonNode source,
                              JsonNode generate, JsonNode defaults, JsonNode guidance, List<RecommendedGuidance> recommendedGuidance) {

    /** One recommended direction: prompts p+/p-, weight and layer schedule text. */
    public record RecommendedGuidance(String direction, String pos, String neg, double w, String layers) {}

    public static ModelDescriptor read(Path file) {
        JsonNode j;
        try {
            j = new ObjectMapper().readTree(Files.readString(file));
        } catch (IOException e) {
            throw new ModelFormatException(file + ": cannot read model descriptor: " + io.mmdit4j.io.FileErrors.reason(e), e);
        }
        for (String field : new String[] {"name", "family", "variant"}) {
            if (!j.path(field).isTextual()) throw new ModelFormatException(file + ": model descriptor needs a \"" + field + "\" string");
        }
        List<RecommendedGuidance> rec = new ArrayList<>();
        for (JsonNode g : j.path("recommended_guidance")) {
            rec.add(new RecommendedGuidance(g.path("direction").asText(), g.path("pos").asText(), g.path("neg").asText(),
                    g.path("w").asDouble(), g.path("layers").asText("all")));
        }
        return new ModelDescriptor(file, j.get("name").asText(), j.get("family").asText(), j.get("variant").asText(),
                j.path("description").asText(""), j.path("source"), j.get("generate"), j.path("defaults"), j.get("guidance"), List.copyOf(rec));
    }

    public boolean isGenerated() {
        return generate != null && !generate.isNull();
    }

    /** The folder beside the descriptor that holds a trained demo's diffusers pipeline ({@code source.bundled}), or null. */
    public String bundled() {
        return source.hasNonNull("bundled") ? source.get("bundled").asText() : null;
    }
}
