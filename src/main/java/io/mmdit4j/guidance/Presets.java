package io.mmdit4j.guidance;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The paper's guidance directions (METHOD.md §4). The weight and schedule of {@code hands} are the paper's FLUX setting
 * (S4 multi-interval); the other directions take the model's recommendation ({@link GuidanceDefaults}: FLUX w 3 from
 * block 5, SD3.5 w 2 from block 2, HunyuanVideo w 3.5 from block 5). A model descriptor may redefine any of them.
 */
public final class Presets {
    private Presets() {}

    public static final Preset COMPLEXITY = new Preset("complexity", "Extremely complex, the highest quality", "Very simple, no details at all", null, null);
    public static final Preset AESTHETICS = new Preset("aesthetics", "Ultra-detailed, photorealistic, cinematic", "Low-res, flat, cartoonish", null, null);
    public static final Preset HANDS = new Preset("hands", "Natural and realistic hands", "Unnatural hands", 1.0, LayerSchedule.parse("13-30:3,31-45:1"));
    public static final Preset COUNTING = new Preset("counting", "[n] [objects]", "Very simple, no details at all", null, null);
    public static final Preset VIDEO_AESTHETICS = new Preset("video-aesthetics", "Ultra-detailed, photorealistic, cinematic",
            "Low-res, bad quality, blurred", null, null);

    private static final Map<String, Preset> ALL = new LinkedHashMap<>();

    static {
        for (Preset p : List.of(COMPLEXITY, AESTHETICS, HANDS, COUNTING, VIDEO_AESTHETICS)) ALL.put(p.name(), p);
    }

    /** Every preset, in the order above. */
    public static List<Preset> all() {
        return List.copyOf(ALL.values());
    }

    /** The preset of a name (case-insensitive, {@code _} for {@code -}), or null. */
    public static Preset find(String name) {
        return name == null ? null : ALL.get(key(name));
    }

    /** The preset of a name; an unknown name is an IllegalArgumentException listing the known ones. */
    public static Preset get(String name) {
        Preset p = find(name);
        if (p == null) throw new IllegalArgumentException("guidance preset '" + name + "': expected one of " + String.join(", ", ALL.keySet()));
        return p;
    }

    /** The lookup key of a preset name. */
    public static String key(String name) {
        return name.trim().toLowerCase(Locale.ROOT).replace('_', '-');
    }
}
