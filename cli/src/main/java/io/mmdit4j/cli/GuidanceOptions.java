package io.mmdit4j.cli;

import io.mmdit4j.guidance.CfgRows;
import io.mmdit4j.guidance.Direction;
import io.mmdit4j.guidance.NormControl;
import io.mmdit4j.guidance.Presets;
import picocli.CommandLine.Option;

import java.util.ArrayList;
import java.util.List;
import java.util.function.BiFunction;

/**
 * The modulation-guidance options of {@code generate} and {@code bench --pipeline} as {@link Direction}s: presets and
 * custom prompt pairs, each with optional weight, layers, steps and CFG rows. A value given once applies to every
 * direction; given once per direction, in order. What is left open is filled by the model (explicit option &gt; preset
 * &gt; the model's recommendation, see {@link io.mmdit4j.guidance.GuidanceDefaults}).
 */
final class GuidanceOptions {
    @Option(names = "--mg-preset", paramLabel = "NAME", description = "guidance preset (repeatable): complexity, aesthetics, hands, counting, video-aesthetics")
    List<String> presets = new ArrayList<>();
    @Option(names = "--mg-pos", paramLabel = "TEXT", description = "positive guidance prompt p+ (repeatable, paired with --mg-neg)")
    List<String> pos = new ArrayList<>();
    @Option(names = "--mg-neg", paramLabel = "TEXT", description = "negative guidance prompt p- (repeatable)")
    List<String> neg = new ArrayList<>();
    @Option(names = "--mg-w", paramLabel = "W", description = "guidance weight: once for all directions or once per direction (default: the preset's, else the model's, e.g. 3 on FLUX)")
    List<Double> w = new ArrayList<>();
    @Option(names = "--mg-layers", paramLabel = "SCHEDULE", description = "layer schedule, e.g. 5- or 13-30:3,31-45:1: once for all or once per direction (default: the preset's, else the model's)")
    List<String> layers = new ArrayList<>();
    @Option(names = "--mg-steps", paramLabel = "WINDOW", description = "step window, e.g. 0-2: once for all or once per direction (default: all)")
    List<String> steps = new ArrayList<>();
    @Option(names = "--mg-rows", paramLabel = "ROWS", description = "with classifier-free guidance, the halves a direction steers: both (SD3.5 reference), cond, cond-neg (HiDream's default), "
            + "or reference-pair (the HiDream reference code: -/+ on any transformer batch of exactly 2, + otherwise): once for all or once per direction")
    List<String> rows = new ArrayList<>();
    @Option(names = "--mg-norm", paramLabel = "MODE", description = "norm control of guided vectors: none, keep-temb-norm, match-guided-norm (default: none)")
    String norm;

    /** Whether any direction is given on the command line. */
    boolean hasDirections() {
        return !presets.isEmpty() || !pos.isEmpty();
    }

    /**
     * The directions: the options' (presets first, then custom pairs), else {@code recorded}'s (e.g. those of a
     * {@code --from} image), with {@code --mg-w}/{@code --mg-layers}/{@code --mg-steps}/{@code --mg-rows} applied.
     */
    List<Direction> directions(List<Direction> recorded) {
        if (pos.size() != neg.size()) throw new IllegalArgumentException("--mg-pos and --mg-neg must come in pairs (" + pos.size() + " vs " + neg.size() + ")");
        List<Direction> out = new ArrayList<>();
        if (hasDirections()) {
            for (String p : presets) {
                if (Presets.find(p) == null && p.isBlank()) throw new IllegalArgumentException("--mg-preset: empty name");
                out.add(Direction.preset(p));
            }
            for (int i = 0; i < pos.size(); i++) out.add(Direction.of(pos.get(i), neg.get(i)).label("custom" + i));
        } else {
            out.addAll(recorded);
        }
        out = apply(out, w, "--mg-w", Direction::w);
        out = apply(out, layers, "--mg-layers", Direction::layers);
        out = apply(out, steps, "--mg-steps", Direction::steps);
        out = apply(out, rows, "--mg-rows", (d, r) -> d.rows(CfgRows.parse(r)));
        return out;
    }

    /** The norm control: the option's, else {@code recorded}. */
    NormControl norm(NormControl recorded) {
        return norm != null ? NormControl.parse(norm) : recorded;
    }

    private static <T> List<Direction> apply(List<Direction> dirs, List<T> values, String option, BiFunction<Direction, T, Direction> set) {
        if (values.isEmpty()) return dirs;
        if (dirs.isEmpty()) throw new IllegalArgumentException(option + " without a guidance direction (give --mg-preset or --mg-pos/--mg-neg)");
        if (values.size() != 1 && values.size() != dirs.size()) {
            throw new IllegalArgumentException(values.size() + " " + option + " values for " + dirs.size() + " guidance directions: give one for all, or one per direction");
        }
        List<Direction> out = new ArrayList<>();
        for (int k = 0; k < dirs.size(); k++) {
            T v = values.get(values.size() == 1 ? 0 : k);
            try {
                out.add(set.apply(dirs.get(k), v));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(option + " " + v + ": " + e.getMessage(), e); // name the option the value came from
            }
        }
        return out;
    }
}
