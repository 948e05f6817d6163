package io.mmdit4j.guidance;

import java.util.Arrays;
import java.util.Objects;

/**
 * One modulation-guidance direction, the guidance input of every family, the command line, sweeps and the server: the
 * prompts p+ / p− (given, or a preset's), the weight {@code w}, the layer schedule, the step window, the CFG halves it
 * steers and optional per-image weights.
 *
 * <p>Fields left null are filled when the direction meets a model ({@link GuidanceDefaults#resolve}), by one rule:
 * an explicit value, else the preset's (as the model's descriptor defines it, else the paper's), else the model's
 * recommendation. {@code Direction.preset("aesthetics")} on FLUX is w 3 from block 5, on SD3.5 w 2 from block 2.
 * Immutable; the {@code with}-style methods return copies.
 *
 * <p>Weights are bounded: {@code |w|}, each {@code |row weight|} and their product (the weight an image's row gets) are at
 * most {@link #MAX_W}; the weight a block finally receives, {@code w·f(l)·row weight}, is bounded by
 * {@link GuidancePlan#MAX_EFFECTIVE_W} once the schedule meets a model. The paper's weights are single digits; a weight of
 * 1e308 only overflows the modulation vector to infinity, which the blocks turn into NaN and the decoder into a black image.
 *
 * @param rowWeights one weight per image (null: every image 1), e.g. {@code {1, 0}} guides image 0 only
 */
public record Direction(String label, String preset, String pos, String neg, Double w, LayerSchedule layers, StepWindow steps,
                        CfgRows rows, double[] rowWeights) {
    /** The largest |w|, |row weight| and |w·row weight| a direction takes. */
    public static final double MAX_W = 100;

    public Direction {
        if (preset == null && (pos == null || neg == null)) {
            throw new IllegalArgumentException("guidance direction" + (label == null ? "" : " '" + label + "'") + " needs a preset or both prompts (p+ and p-)");
        }
        String name = name(label, preset);
        if (w != null && !(Math.abs(w) <= MAX_W)) { // also NaN
            throw new IllegalArgumentException("guidance direction '" + name + "': w must be in " + range() + ", got " + w);
        }
        if (rowWeights != null) {
            rowWeights = rowWeights.clone();
            for (double r : rowWeights) {
                if (!(Math.abs(r) <= MAX_W)) {
                    throw new IllegalArgumentException("guidance direction '" + name + "': row weights must be in " + range() + ", got " + r);
                }
                if (w != null && Math.abs(w * r) > MAX_W) {
                    throw new IllegalArgumentException("guidance direction '" + name + "': w " + w + " x row weight " + r + " = " + w * r
                            + " is outside " + range() + " (the weight of that image)");
                }
            }
        }
    }

    private static String range() {
        return "-" + (long) MAX_W + ".." + (long) MAX_W;
    }

    /** A direction given by its prompts; everything else from the model's recommendation. */
    public static Direction of(String pos, String neg) {
        return new Direction(null, null, Objects.requireNonNull(pos, "pos"), Objects.requireNonNull(neg, "neg"), null, null, null, null, null);
    }

    /** A named preset ({@link Presets}, or one the model's descriptor defines). */
    public static Direction preset(String name) {
        if (name == null || name.isBlank()) throw new IllegalArgumentException("guidance preset name is empty");
        return new Direction(null, Presets.key(name), null, null, null, null, null, null, null);
    }

    public Direction label(String label) {
        return new Direction(label, preset, pos, neg, w, layers, steps, rows, rowWeights);
    }

    public Direction prompts(String pos, String neg) {
        return new Direction(label, preset, pos, neg, w, layers, steps, rows, rowWeights);
    }

    public Direction w(double w) {
        return new Direction(label, preset, pos, neg, w, layers, steps, rows, rowWeights);
    }

    public Direction layers(LayerSchedule layers) {
        return new Direction(label, preset, pos, neg, w, layers, steps, rows, rowWeights);
    }

    /** The layer schedule in its text form, e.g. {@code 5-} or {@code 13-30:3,31-45:1}. */
    public Direction layers(String layers) {
        return layers(LayerSchedule.parse(layers));
    }

    public Direction steps(StepWindow steps) {
        return new Direction(label, preset, pos, neg, w, layers, steps, rows, rowWeights);
    }

    /** The step window in its text form, e.g. {@code all} or {@code 0-2}. */
    public Direction steps(String steps) {
        return steps(StepWindow.parse(steps));
    }

    public Direction rows(CfgRows rows) {
        return new Direction(label, preset, pos, neg, w, layers, steps, rows, rowWeights);
    }

    /** One weight per image of the request (e.g. {@code 1, 0} guides the first of two images only). */
    public Direction rowWeights(double... weights) {
        return new Direction(label, preset, pos, neg, w, layers, steps, rows, weights);
    }

    /** True when every field a generation needs is set ({@link GuidanceDefaults#resolve} does that). */
    public boolean isResolved() {
        return label != null && pos != null && neg != null && w != null && layers != null && steps != null && rows != null;
    }

    /** The label, else the preset name, else {@code custom}. */
    public String name() {
        return name(label, preset);
    }

    private static String name(String label, String preset) {
        return label != null ? label : preset != null ? preset : "custom";
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Direction d && Objects.equals(label, d.label) && Objects.equals(preset, d.preset) && Objects.equals(pos, d.pos)
                && Objects.equals(neg, d.neg) && Objects.equals(w, d.w) && Objects.equals(layers, d.layers) && Objects.equals(steps, d.steps)
                && rows == d.rows && Arrays.equals(rowWeights, d.rowWeights);
    }

    @Override
    public int hashCode() {
        return Objects.hash(label, preset, pos, neg, w, layers, steps, rows) * 31 + Arrays.hashCode(rowWeights);
    }

    @Override
    public String toString() {
        return "Direction[" + name() + (pos == null ? "" : ", +'" + pos + "', -'" + neg + "'") + ", w=" + w + ", layers=" + layers
                + ", steps=" + steps + ", rows=" + rows + (rowWeights == null ? "" : ", rowWeights=" + Arrays.toString(rowWeights)) + "]";
    }
}
