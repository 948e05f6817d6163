package io.mmdit4j.research;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.mmdit4j.guidance.Preset;
import io.mmdit4j.guidance.Presets;


/** A guidance direction of a sweep: a prompt pair p+ / p− with a label (a preset's name, or the user's). */
public record SweepDirection(String label, String pos, String neg) {
    public SweepDirection {
        if (pos == null || neg == null || pos.isEmpty() || neg.isEmpty()) {
            throw new IllegalArgumentException("sweep direction '" + label + "' needs both prompts (pos and neg)");
        }
        if (label == null || label.isBlank()) label = "custom";
    }

    public static SweepDirection preset(String name) {
        Preset p = Presets.get(name);
        return new SweepDirection(p.name(), p.pos(), p.neg());
    }

    /** {@code "aesthetics"}, {@code {"preset": "hands"}} or {@code {"label": "vivid", "pos": "...", "neg": "..."}}. */
    static SweepDirection fromJson(JsonNode n, String where) {
        if (n.isTextual()) return preset(n.asText());
        if (!n.isObject()) throw new IllegalArgumentException(where + ": expected a preset name or {\"label\", \"pos\", \"neg\"}, got " + n);
        n.fieldNames().forEachRemaining(f -> {
            if (!f.equals("preset") && !f.equals("label") && !f.equals("pos") && !f.equals("neg")) {
                throw new IllegalArgumentException(where + ": unknown field '" + f + "' (expected preset, or label, pos and neg)");
            }
        });
        if (n.has("preset")) {
            SweepDirection p = preset(n.get("preset").asText());
            return n.has("label") ? new SweepDirection(n.get("label").asText(), p.pos, p.neg) : p;
        }
        if (!n.path("pos").isTextual() || !n.path("neg").isTextual()) {
            throw new IllegalArgumentException(where + ": a custom direction needs text fields pos and neg");
        }
        return new SweepDirection(n.path("label").asText("custom"), n.get("pos").asText(), n.get("neg").asText());
    }

    JsonNode toJson() {
        ObjectNode o = JsonNodeFactory.instance.objectNode();
        return o.put("label", label).put("pos", pos).put("neg", neg);
    }
}
