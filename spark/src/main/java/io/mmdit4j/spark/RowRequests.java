package io.mmdit4j.spark;

import io.mmdit4j.guidance.CfgRows;
import io.mmdit4j.guidance.Direction;
import io.mmdit4j.pipeline.GenerationRequest;
import io.mmdit4j.pipeline.InvalidRequestException;

import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A table row as a {@link GenerationRequest} of one image, with the API's strict checks: each bad value is an
 * {@link InvalidRequestException} naming its column, and the row fails with that message. Columns: {@code prompt} and
 * {@code seed} (required), {@code size} ({@code WxH}) or {@code width}/{@code height}, {@code steps},
 * {@code max_sequence_length}, {@code guidance_scale} (embedded guidance, FLUX.1-dev), {@code cfg} with an optional
 * {@code negative_prompt} (classifier-free guidance: SD3 / SD3.5, COSMOS), and one guidance direction:
 * {@code mg_preset}, or {@code mg_pos} with {@code mg_neg}, with optional {@code mg_w}, {@code mg_layers},
 * {@code mg_steps}, {@code mg_rows} — the meanings of {@code generate}'s options of the same names. Left out: the model's.
 */
public final class RowRequests {
    private RowRequests() {}

    private static final Pattern SIZE = Pattern.compile("\\s*(\\S+?)\\s*[xX×]\\s*(\\S+)\\s*");
    private static final Pattern WHOLE = Pattern.compile("[0-9]+(\\.0*)?");

    /** The request of a row's values (column name to text, absent columns left out). */
    public static GenerationRequest parse(Map<String, String> v) {
        GenerationRequest.Builder b = GenerationRequest.builder();
        String prompt = v.get(Columns.PROMPT);
        if (prompt == null) throw new InvalidRequestException("'prompt' is missing");
        b.prompt(prompt);
        String seed = v.get(Columns.SEED);
        if (seed == null) throw new InvalidRequestException("'seed' is missing");
        b.seed(seed(seed));
        String size = v.get("size");
        if (size != null) {
            if (v.containsKey("width") || v.containsKey("height")) throw new InvalidRequestException("give 'size' or 'width'/'height', not both");
            Matcher m = SIZE.matcher(size);
            if (!m.matches()) throw new InvalidRequestException("'size' " + InputRow.quote(size) + ": expected WIDTHxHEIGHT, e.g. 512x512");
            int w = integer("size", m.group(1)), h = integer("size", m.group(2));
            column("size", size, () -> b.size(w, h).build());
        }
        if (v.containsKey("width")) b.width(integer("width", v.get("width")));
        if (v.containsKey("height")) b.height(integer("height", v.get("height")));
        if (v.containsKey("steps")) b.steps(integer("steps", v.get("steps")));
        if (v.containsKey("max_sequence_length")) b.maxSequenceLength(integer("max_sequence_length", v.get("max_sequence_length")));
        if (v.containsKey("guidance_scale")) b.guidanceScale(number("guidance_scale", v.get("guidance_scale")));
        if (v.containsKey("cfg")) {
            double scale = number("cfg", v.get("cfg"));
            String negative = v.get("negative_prompt");
            column("cfg", v.get("cfg"), () -> b.cfg(scale, negative == null ? List.of() : List.of(negative)));
        } else if (v.containsKey("negative_prompt")) {
            throw new InvalidRequestException("'negative_prompt' needs 'cfg' (the classifier-free guidance scale it is used with)");
        }
        Direction d = direction(v);
        if (d != null) b.guide(d);
        try {
            return b.build();
        } catch (InvalidRequestException e) {
            throw e;
        } catch (IllegalArgumentException e) {
            throw new InvalidRequestException(e.getMessage(), e);
        }
    }

    /** The row's guidance direction, or null when it has none. */
    static Direction direction(Map<String, String> v) {
        String preset = v.get("mg_preset"), pos = v.get("mg_pos"), neg = v.get("mg_neg");
        if (preset == null && pos == null && neg == null) {
            for (String c : new String[] {"mg_w", "mg_layers", "mg_steps", "mg_rows"}) {
                if (v.containsKey(c)) throw new InvalidRequestException("'" + c + "' without a guidance direction (give 'mg_preset', or 'mg_pos' and 'mg_neg')");
            }
            return null;
        }
        if ((pos == null) != (neg == null)) throw new InvalidRequestException("'mg_pos' and 'mg_neg' go together: give both or neither");
        Direction d;
        if (preset != null) {
            d = column("mg_preset", preset, () -> Direction.preset(preset));
            if (pos != null) d = d.prompts(pos, neg);
        } else {
            d = Direction.of(pos, neg).label("custom0"); // the command line's label for its first --mg-pos/--mg-neg pair
        }
        Direction base = d;
        if (v.containsKey("mg_w")) {
            double w = number("mg_w", v.get("mg_w"));
            d = column("mg_w", v.get("mg_w"), () -> base.w(w));
        }
        d = apply(d, v, "mg_layers", Direction::layers);
        d = apply(d, v, "mg_steps", Direction::steps);
        d = apply(d, v, "mg_rows", (x, r) -> x.rows(CfgRows.parse(r)));
        return d;
    }

    private static Direction apply(Direction d, Map<String, String> v, String col, java.util.function.BiFunction<Direction, String, Direction> set) {
        String text = v.get(col);
        return text == null ? d : column(col, text, () -> set.apply(d, text.trim()));
    }

    /** Seeds as the command line takes them: whole numbers 0..2^64-1. */
    static long seed(String text) {
        String t = text.trim();
        try {
            if (t.isEmpty() || t.startsWith("-") || t.startsWith("+")) throw new NumberFormatException();
            return Long.parseUnsignedLong(t);
        } catch (NumberFormatException e) {
            throw new InvalidRequestException("'seed' " + InputRow.quote(text) + ": expected a whole number in 0..18446744073709551615 (2^64-1)");
        }
    }

    /** A whole number; {@code 512.0} (a Parquet or JSON double) counts as 512. */
    static int integer(String col, String text) {
        String t = text.trim();
        if (!WHOLE.matcher(t).matches()) throw new InvalidRequestException("'" + col + "' " + InputRow.quote(text) + ": expected a whole number");
        String digits = t.contains(".") ? t.substring(0, t.indexOf('.')) : t;
        try {
            return Integer.parseInt(digits);
        } catch (NumberFormatException e) {
            throw new InvalidRequestException("'" + col + "' " + InputRow.quote(text) + ": too large");
        }
    }

    static double number(String col, String text) {
        try {
            double x = Double.parseDouble(text.trim());
            if (!Double.isFinite(x)) throw new NumberFormatException();
            return x;
        } catch (NumberFormatException e) {
            throw new InvalidRequestException("'" + col + "' " + InputRow.quote(text) + ": expected a finite number");
        }
    }

    private static <T> T column(String col, String text, java.util.function.Supplier<T> make) {
        try {
            return make.get();
        } catch (IllegalArgumentException e) {
            throw new InvalidRequestException("'" + col + "' " + InputRow.quote(text) + ": " + e.getMessage(), e);
        }
    }

}
