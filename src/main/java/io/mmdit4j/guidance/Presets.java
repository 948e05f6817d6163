package io.mmdit4j.guidance;

import java.util.Locale;

/** The paper's guidance directions (METHOD.md §4) with their recommended weight and schedule on FLUX. */
public enum Presets {
    COMPLEXITY("Extremely complex, the highest quality", "Very simple, no details at all", 3.0, "5-"),
    AESTHETICS("Ultra-detailed, photorealistic, cinematic", "Low-res, flat, cartoonish", 3.0, "5-"),
    HANDS("Natural and realistic hands", "Unnatural hands", 1.0, "13-30:3,31-45:1"),
    COUNTING("[n] [objects]", "Very simple, no details at all", 3.0, "5-");

    public final String pos;
    public final String neg;
    public final double w;
    public final String layers;

    Presets(String pos, String neg, double w, String layers) {
        this.pos = pos;
        this.neg = neg;
        this.w = w;
        this.layers = layers;
    }

    public static Presets parse(String name) {
        try {
            return valueOf(name.trim().toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("guidance preset '" + name + "': expected complexity, aesthetics, hands or counting");
        }
    }
}
