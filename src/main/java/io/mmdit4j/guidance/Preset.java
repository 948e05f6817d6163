package io.mmdit4j.guidance;

/**
 * A named guidance direction: its prompts p+ / p−, and the weight and layer schedule it was published with where the
 * paper gives one for this direction (null: the model's recommendation applies, see {@link GuidanceDefaults}).
 */
public record Preset(String name, String pos, String neg, Double w, LayerSchedule layers) {
    public Preset {
        if (name == null || name.isBlank()) throw new IllegalArgumentException("a guidance preset needs a name");
        if (pos == null || neg == null) throw new IllegalArgumentException("guidance preset '" + name + "' needs both prompts");
        if (w != null && !Double.isFinite(w)) throw new IllegalArgumentException("guidance preset '" + name + "': w must be finite, got " + w);
    }
}
