package io.mmdit4j.research;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.guidance.NormControl;
import io.mmdit4j.guidance.StepWindow;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Function;

/**
 * A guidance sweep: every combination of prompts × seeds × w × layer schedules × step windows × directions × norm
 * controls, on one model at one size. The JSON form (keys as in {@link #toJson()}; keys starting with {@code _} are
 * comments):
 * <pre>
 * { "model": "flux-tiny-demo", "width": 64, "height": 64, "steps": 2,
 *   "prompts": ["a red fox", "a lighthouse"], "seeds": [0, 1], "w": [1, 3, 6], "layers": ["1-", "3~2"],
 *   "step_windows": ["all"], "directions": ["aesthetics", {"label": "vivid", "pos": "...", "neg": "..."}],
 *   "norm_control": ["none"], "layout": {"rows": "w", "cols": "layers"}, "batch": 4, "stats": true, "analyze": "shapes" }
 * </pre>
 * Absent sizes, steps, guidance scale and T5 length come from the model's descriptor. Axis names (for the layout):
 * {@code prompt, seed, w, layers, steps, direction, norm}. {@code analyze} ({@link SweepAnalyzer}; absent = {@code none}) adds what
 * an analyzer reads from every image to the results.
 */
public record SweepSpec(String model, String dtype, Integer width, Integer height, Integer steps, Double guidanceScale,
                        Integer maxSequenceLength, List<String> prompts, List<Long> seeds, List<Double> w, List<String> layers,
                        List<String> stepWindows, List<SweepDirection> directions, List<String> normControl,
                        String rows, String cols, int batch, boolean stats, SweepAnalyzer analyze) {
    public static final List<String> AXES = List.of("prompt", "seed", "w", "layers", "steps", "direction", "norm");
    private static final Set<String> KEYS = Set.of("model", "dtype", "width", "height", "steps", "guidance_scale", "max_sequence_length",
            "prompts", "seeds", "w", "layers", "step_windows", "directions", "norm_control", "layout", "batch", "stats", "analyze");

    public SweepSpec {
        if (model == null || model.isBlank()) model = "flux-tiny-demo";
        if (dtype == null) dtype = "fp32";
        if (analyze == null) analyze = SweepAnalyzer.NONE;
        prompts = distinct(prompts, List.of(), "prompts");
        if (prompts.isEmpty()) throw new IllegalArgumentException("sweep: give at least one prompt");
        seeds = distinct(seeds, List.of(0L), "seeds");
        w = distinct(w, List.of(3.0), "w");
        for (double x : w) {
            if (!(Math.abs(x) <= io.mmdit4j.guidance.Direction.MAX_W)) { // the limit every direction has (also NaN)
                throw new IllegalArgumentException("sweep: w must be in -" + (long) io.mmdit4j.guidance.Direction.MAX_W + ".."
                        + (long) io.mmdit4j.guidance.Direction.MAX_W + ", got " + x);
            }
        }
        layers = distinct(layers, List.of("all"), "layers");
        layers = layers.stream().map(s -> LayerSchedule.parse(s).toString()).distinct().toList(); // canonical text; bad text throws
        stepWindows = distinct(stepWindows, List.of("all"), "step_windows");
        stepWindows = stepWindows.stream().map(s -> StepWindow.parse(s).toString()).distinct().toList();
        directions = distinct(directions, List.of(SweepDirection.preset("aesthetics")), "directions");
        normControl = distinct(normControl, List.of("none"), "norm_control");
        normControl = normControl.stream().map(s -> NormControl.parse(s).text()).distinct().toList();
        if (rows == null) rows = "w";
        if (cols == null) cols = "layers";
        checkAxis(rows, "rows");
        checkAxis(cols, "cols");
        if (rows.equals(cols)) throw new IllegalArgumentException("sweep layout: rows and cols are both '" + rows + "'");
        if (batch < 1) throw new IllegalArgumentException("sweep: batch must be >= 1, got " + batch);
        if (width != null || height != null) { // the limits of every request
            try {
                io.mmdit4j.pipeline.GenerationRequest.checkSize(width != null ? width : 16, height != null ? height : 16);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("sweep: " + e.getMessage(), e);
            }
        }
        if (steps != null && (steps < 1 || steps > io.mmdit4j.pipeline.GenerationRequest.MAX_STEPS)) {
            throw new IllegalArgumentException("sweep: steps must be in 1.." + io.mmdit4j.pipeline.GenerationRequest.MAX_STEPS + ", got " + steps);
        }
    }

    private static <T> List<T> distinct(List<T> values, List<T> dflt, String what) {
        if (values == null || values.isEmpty()) return dflt;
        for (T v : values) if (v == null) throw new IllegalArgumentException("sweep: " + what + " contains null");
        return List.copyOf(new LinkedHashSet<>(values));
    }

    private static void checkAxis(String axis, String where) {
        if (!AXES.contains(axis)) throw new IllegalArgumentException("sweep layout " + where + ": unknown axis '" + axis + "', expected one of " + AXES);
    }

    /** How many values the axis has. */
    public int axisSize(String axis) {
        return switch (axis) {
            case "prompt" -> prompts.size();
            case "seed" -> seeds.size();
            case "w" -> w.size();
            case "layers" -> layers.size();
            case "steps" -> stepWindows.size();
            case "direction" -> directions.size();
            case "norm" -> normControl.size();
            default -> throw new IllegalArgumentException("unknown axis " + axis);
        };
    }

    public static SweepSpec read(Path file) throws IOException {
        JsonNode n;
        try {
            n = new ObjectMapper().readTree(Files.readString(file));
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalArgumentException(file + ": not valid JSON: " + e.getOriginalMessage(), e);
        }
        try {
            return fromJson(n);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
        }
    }

    public static SweepSpec fromJson(JsonNode n) {
        if (n == null || !n.isObject()) throw new IllegalArgumentException("a sweep spec must be a JSON object");
        n.fieldNames().forEachRemaining(k -> {
            if (!k.startsWith("_") && !KEYS.contains(k)) throw new IllegalArgumentException("unknown sweep spec key '" + k + "' (known: " + KEYS + ")");
        });
        JsonNode layout = n.path("layout");
        if (!layout.isMissingNode() && !layout.isObject()) throw new IllegalArgumentException("layout: expected {\"rows\": axis, \"cols\": axis}");
        List<SweepDirection> dirs = new ArrayList<>();
        int k = 0;
        for (JsonNode d : array(n, "directions")) dirs.add(SweepDirection.fromJson(d, "directions[" + k++ + "]"));
        return new SweepSpec(text(n, "model"), text(n, "dtype"), integer(n, "width"), integer(n, "height"), integer(n, "steps"),
                n.hasNonNull("guidance_scale") ? number(n.get("guidance_scale"), "guidance_scale") : null, integer(n, "max_sequence_length"),
                list(n, "prompts", x -> textValue(x, "prompts")), list(n, "seeds", x -> longValue(x, "seeds")),
                list(n, "w", x -> number(x, "w")), list(n, "layers", x -> textValue(x, "layers")),
                list(n, "step_windows", x -> textValue(x, "step_windows")), dirs, list(n, "norm_control", x -> textValue(x, "norm_control")),
                layout.hasNonNull("rows") ? layout.get("rows").asText() : null, layout.hasNonNull("cols") ? layout.get("cols").asText() : null,
                n.hasNonNull("batch") ? (int) longValue(n.get("batch"), "batch") : 4, !n.has("stats") || n.get("stats").asBoolean(true),
                SweepAnalyzer.parse(text(n, "analyze")));
    }

    private static Iterable<JsonNode> array(JsonNode n, String key) {
        JsonNode a = n.path(key);
        if (a.isMissingNode() || a.isNull()) return List.of();
        if (!a.isArray()) return List.of(a); // a single value is a one-element axis
        return a;
    }

    private static <T> List<T> list(JsonNode n, String key, Function<JsonNode, T> f) {
        List<T> out = new ArrayList<>();
        for (JsonNode x : array(n, key)) out.add(f.apply(x));
        return out;
    }

    private static String text(JsonNode n, String key) {
        return n.hasNonNull(key) ? textValue(n.get(key), key) : null;
    }

    private static String textValue(JsonNode x, String key) {
        if (!x.isTextual()) throw new IllegalArgumentException(key + ": expected text, got " + x);
        return x.asText();
    }

    private static Integer integer(JsonNode n, String key) {
        return n.hasNonNull(key) ? (int) longValue(n.get(key), key) : null;
    }

    private static long longValue(JsonNode x, String key) {
        if (!x.isIntegralNumber()) throw new IllegalArgumentException(key + ": expected an integer, got " + x);
        return x.asLong();
    }

    private static double number(JsonNode x, String key) {
        if (!x.isNumber()) throw new IllegalArgumentException(key + ": expected a number, got " + x);
        return x.asDouble();
    }

    public ObjectNode toJson() {
        ObjectNode o = new ObjectMapper().createObjectNode();
        o.put("model", model).put("dtype", dtype);
        if (width != null) o.put("width", width);
        if (height != null) o.put("height", height);
        if (steps != null) o.put("steps", steps);
        if (guidanceScale != null) o.put("guidance_scale", guidanceScale);
        if (maxSequenceLength != null) o.put("max_sequence_length", maxSequenceLength);
        prompts.forEach(o.putArray("prompts")::add);
        seeds.forEach(o.putArray("seeds")::add);
        w.forEach(o.putArray("w")::add);
        layers.forEach(o.putArray("layers")::add);
        stepWindows.forEach(o.putArray("step_windows")::add);
        ArrayNode d = o.putArray("directions");
        directions.forEach(x -> d.add(x.toJson()));
        normControl.forEach(o.putArray("norm_control")::add);
        o.putObject("layout").put("rows", rows).put("cols", cols);
        o.put("batch", batch).put("stats", stats);
        if (analyze != SweepAnalyzer.NONE) o.put("analyze", analyze.word); // off: spec.json as before the option
        return o;
    }

    /** A mutable copy for command-line overrides. */
    public Builder toBuilder() {
        Builder b = new Builder();
        b.model = model; b.dtype = dtype; b.width = width; b.height = height; b.steps = steps; b.guidanceScale = guidanceScale;
        b.maxSequenceLength = maxSequenceLength; b.prompts = new ArrayList<>(prompts); b.seeds = new ArrayList<>(seeds); b.w = new ArrayList<>(w);
        b.layers = new ArrayList<>(layers); b.stepWindows = new ArrayList<>(stepWindows); b.directions = new ArrayList<>(directions);
        b.normControl = new ArrayList<>(normControl); b.rows = rows; b.cols = cols; b.batch = batch; b.stats = stats;
        b.analyze = analyze;
        return b;
    }

    /** Mutable fields; {@link #build()} validates. */
    public static final class Builder {
        public String model, dtype, rows, cols;
        public Integer width, height, steps, maxSequenceLength;
        public Double guidanceScale;
        public List<String> prompts = new ArrayList<>(), layers = new ArrayList<>(), stepWindows = new ArrayList<>(), normControl = new ArrayList<>();
        public List<Long> seeds = new ArrayList<>();
        public List<Double> w = new ArrayList<>();
        public List<SweepDirection> directions = new ArrayList<>();
        public int batch = 4;
        public boolean stats = true;
        public SweepAnalyzer analyze = SweepAnalyzer.NONE;

        public SweepSpec build() {
            return new SweepSpec(model, dtype, width, height, steps, guidanceScale, maxSequenceLength, prompts, seeds, w, layers, stepWindows,
                    directions, normControl, rows, cols, batch, stats, analyze);
        }
    }
}
