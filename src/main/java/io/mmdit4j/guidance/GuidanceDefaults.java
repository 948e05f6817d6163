package io.mmdit4j.guidance;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A model's guidance recommendation (METHOD.md §4: FLUX w 3 from block 5, SD3.5 w 2 from block 2, HunyuanVideo w 3.5
 * from block 5), and the presets its descriptor defines for it, which take the place of the paper's ones of the same
 * name. {@link #resolve} applies the one rule for defaults: explicit value &gt; preset &gt; recommendation.
 */
public record GuidanceDefaults(double w, LayerSchedule layers, CfgRows rows, Map<String, Preset> presets) {
    public GuidanceDefaults {
        if (!Double.isFinite(w)) throw new IllegalArgumentException("recommended guidance weight must be finite, got " + w);
        if (layers == null) throw new IllegalArgumentException("recommended guidance needs a layer schedule");
        if (rows == null) rows = CfgRows.BOTH;
        Map<String, Preset> byKey = new LinkedHashMap<>();
        if (presets != null) presets.values().forEach(p -> byKey.put(Presets.key(p.name()), p));
        presets = Map.copyOf(byKey);
    }

    /** A recommendation without model-specific presets. */
    public static GuidanceDefaults of(double w, String layers) {
        return new GuidanceDefaults(w, LayerSchedule.parse(layers), CfgRows.BOTH, Map.of());
    }

    /** The same recommendation with {@code overrides} replacing presets of the same name. */
    public GuidanceDefaults withPresets(List<Preset> overrides) {
        Map<String, Preset> m = new LinkedHashMap<>(presets);
        for (Preset p : overrides) m.put(Presets.key(p.name()), p);
        return new GuidanceDefaults(w, layers, rows, m);
    }

    /** The same presets with another recommended weight and schedule. */
    public GuidanceDefaults withRecommendation(double w, LayerSchedule layers) {
        return new GuidanceDefaults(w, layers, rows, presets);
    }

    /** The preset of a name as this model defines it, else the paper's, else null. */
    public Preset preset(String name) {
        Preset own = presets.get(Presets.key(name));
        return own != null ? own : Presets.find(name);
    }

    /** Every field of {@code d} filled: explicit value &gt; preset &gt; this recommendation. */
    public Direction resolve(Direction d) {
        Preset p = null;
        if (d.preset() != null) {
            p = preset(d.preset());
            if (p == null) {
                throw new IllegalArgumentException("guidance preset '" + d.preset() + "': expected one of "
                        + String.join(", ", known()));
            }
        }
        String label = d.label() != null ? d.label() : p != null ? p.name() : "custom";
        String pos = d.pos() != null ? d.pos() : p.pos();
        String neg = d.neg() != null ? d.neg() : p.neg();
        double weight = d.w() != null ? d.w() : p != null && p.w() != null ? p.w() : w;
        LayerSchedule l = d.layers() != null ? d.layers() : p != null && p.layers() != null ? p.layers() : layers;
        return new Direction(label, d.preset(), pos, neg, weight, l, d.steps() != null ? d.steps() : StepWindow.all(),
                d.rows() != null ? d.rows() : rows, d.rowWeights());
    }

    private List<String> known() {
        Map<String, Boolean> names = new LinkedHashMap<>();
        Presets.all().forEach(p -> names.put(p.name(), true));
        presets.values().forEach(p -> names.put(p.name(), true));
        return List.copyOf(names.keySet());
    }
}
