package io.mmdit4j.guidance;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.StringJoiner;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Per-layer factor {@code f(l)} for modulation guidance: block {@code l} receives {@code w * f(l) * delta}, where
 * {@code w} is the user's guidance weight. Layers are the model's transformer blocks counted with one global,
 * 0-based counter (FLUX: double blocks 0..18, then single blocks 19..56). Immutable.
 *
 * <h2>Text form</h2>
 * <pre>
 *   schedule := item ( "," item )*  |  "list:" number ( "," number )*
 *   item     := body [ ":" factor ]          (factor defaults to 1)
 *   body     := "all"        f = 1 on every layer (same as "0-")
 *             | "none"       f = 0 everywhere (contributes nothing)
 *             | N "-"        S1 step:     f = 1 for l &gt;= N
 *             | N "-" M      S2 interval: f = 1 for N &lt;= l &lt;= M (inclusive, M &gt;= N)
 *             | N            a single layer
 *             | C "~" R      S3 Hann bump: f = 0.5 * (1 + cos(pi * (l - C) / R)) for |l - C| &lt; R, else 0
 *   N, M, C  := non-negative integer layer index
 *   R        := decimal &gt; 0 (may be fractional, e.g. 6.5)
 *   factor, number := finite decimal, may be negative or use an exponent (2, 0.5, -1, 1E-3)
 * </pre>
 * Items <b>add up</b> where they overlap: {@code 13-30:3,30-45:1} gives 3 on 13..29, <b>4</b> on layer 30 and 1 on
 * 31..45. The paper's S4 multi-interval schedule is {@code 13-30:3,31-45:1}. {@code list:a,b,c} gives layer
 * {@code i} the {@code i}-th number (0 past the end of the list); it must be the whole text and cannot be combined
 * with other items. Whitespace around items and numbers is ignored, and the words {@code all}, {@code none} and
 * {@code list} are case-insensitive.
 *
 * <p>{@link #toString()} returns the canonical text form, which {@link #parse(String)} accepts back as an equal
 * schedule. Equality is structural: the same items, with the same factors, in the same order.
 *
 * <p>Layer indices are checked against the model only when the schedule is resolved with {@link #factors(int)}:
 * any explicit index (an interval start or end, a single layer, a bump centre, or a nonzero list entry) outside
 * {@code 0..numLayers-1} is an error. An open range {@code N-} that starts past the last block selects no block, as
 * the reference code does ({@code start_layer <= idx} matches nothing): schedules written for FLUX's 57 blocks then
 * travel to smaller models; {@link #unreachable(int)} names such items so callers can warn. A bump whose tails reach
 * past either end of the model is fine.
 */
public final class LayerSchedule {
    private static final String EXPECTED_ITEM =
            "expected N, N-, N-M, C~R, all or none, optionally followed by :factor";
    private static final String EXPECTED_SCHEDULE = "expected comma-separated items such as all, 5-, 2-7, 7, 20~6, "
            + "13-30:3,31-45:1 (each N, N-, N-M, C~R, all or none, optionally followed by :factor), "
            + "or a single list:0,0,1,1.5";
    private static final String EXPECTED_NUMBER = "expected a finite decimal number such as 2, 0.5 or -1";
    private static final String LIST_ALONE =
            "list: must be the whole schedule and cannot be combined with other items";

    /** Optional sign, digits with an optional fraction (or a bare fraction), optional exponent. No NaN/Infinity. */
    private static final Pattern DECIMAL = Pattern.compile("[+-]?(?:\\d+(?:\\.\\d*)?|\\.\\d+)(?:[eE][+-]?\\d+)?");
    private static final Pattern DIGITS = Pattern.compile("\\d+");
    private static final Pattern LIST = Pattern.compile("(?i)list\\s*:(.*)", Pattern.DOTALL);

    private static final LayerSchedule NONE = new LayerSchedule(List.of());
    private static final LayerSchedule ALL = new LayerSchedule(List.of(new Span(0, Span.OPEN, 1)));

    private final List<Item> items;

    private LayerSchedule(List<Item> items) {
        this.items = List.copyOf(items);
    }

    // ---------------------------------------------------------------------------------------------- factories

    /** f = 1 on every layer. Text {@code all} (also accepted: {@code 0-}). */
    public static LayerSchedule all() {
        return ALL;
    }

    /** f = 0 everywhere. Text {@code none}. */
    public static LayerSchedule none() {
        return NONE;
    }

    /** S1 step: f = 1 for every layer {@code >= start}. Text {@code 5-}. */
    public static LayerSchedule from(int start) {
        requireLayer("from(" + start + ")", start);
        return single(new Span(start, Span.OPEN, 1));
    }

    /** S2 interval: f = 1 on {@code first..last} inclusive. Text {@code 2-7}. */
    public static LayerSchedule interval(int first, int last) {
        String call = "interval(" + first + ", " + last + ")";
        requireLayer(call, first);
        if (last < first) {
            throw new IllegalArgumentException("layer schedule " + call + ": last layer " + last
                    + " is before first layer " + first);
        }
        return single(new Span(first, last, 1));
    }

    /** A single layer: f = 1 on {@code layer} only. Text {@code 7}. */
    public static LayerSchedule layer(int layer) {
        requireLayer("layer(" + layer + ")", layer);
        return single(new Span(layer, layer, 1));
    }

    /**
     * S3 Hann bump: f(l) = 0.5 * (1 + cos(pi * (l - centre) / radius)) for |l - centre| &lt; radius, else 0, so
     * f(centre) = 1. Text {@code 20~6}.
     */
    public static LayerSchedule bump(int centre, double radius) {
        String call = "bump(" + centre + ", " + radius + ")";
        requireLayer(call, centre);
        if (!(radius > 0) || !Double.isFinite(radius)) {
            throw new IllegalArgumentException("layer schedule " + call + ": radius must be a finite number > 0");
        }
        return single(new Bump(centre, normalize(radius), 1));
    }

    /**
     * Explicit factors: f(l) = factors[l] for l &lt; factors.length, 0 beyond. Text {@code list:0,0,1,1.5}. Such a
     * schedule can only be {@linkplain #plus added} to another list (or to {@link #none()}).
     */
    public static LayerSchedule perLayer(double... factors) {
        Objects.requireNonNull(factors, "factors");
        if (factors.length == 0) {
            throw new IllegalArgumentException("layer schedule perLayer(): needs at least one factor");
        }
        double[] copy = new double[factors.length];
        for (int i = 0; i < factors.length; i++) {
            if (!Double.isFinite(factors[i])) {
                throw new IllegalArgumentException("layer schedule perLayer(...): factor " + i + " is "
                        + factors[i] + "; factors must be finite");
            }
            copy[i] = normalize(factors[i]);
        }
        return single(new PerLayer(copy));
    }

    // -------------------------------------------------------------------------------------------- combinators

    /** This schedule with every item's factor multiplied by {@code factor}. Text suffix {@code :factor}. */
    public LayerSchedule times(double factor) {
        if (!Double.isFinite(factor)) {
            throw new IllegalArgumentException("layer schedule \"" + this + "\": cannot scale by " + factor
                    + "; the factor must be finite");
        }
        List<Item> scaled = new ArrayList<>(items.size());
        for (Item item : items) {
            Item s = item.times(factor);
            if (!s.isFinite()) {
                throw new IllegalArgumentException("layer schedule \"" + this + "\": scaling by " + factor
                        + " overflows item \"" + item.text() + "\"");
            }
            scaled.add(s);
        }
        return new LayerSchedule(scaled);
    }

    /**
     * The sum of both schedules (their items joined by {@code ,}). A {@code list:} schedule can only be added to
     * another list (summed entry by entry) or to {@link #none()}; anything else throws, since the text form cannot
     * express it.
     */
    public LayerSchedule plus(LayerSchedule other) {
        Objects.requireNonNull(other, "other");
        if (other.items.isEmpty()) return this;
        if (items.isEmpty()) return other;
        boolean thisList = isList();
        boolean otherList = other.isList();
        if (thisList && otherList) {
            PerLayer sum = ((PerLayer) items.get(0)).plus((PerLayer) other.items.get(0));
            if (!sum.isFinite()) {
                throw new IllegalArgumentException("layer schedule \"" + this + "\" plus \"" + other
                        + "\": the sum overflows");
            }
            return single(sum);
        }
        if (thisList || otherList) {
            throw new IllegalArgumentException("layer schedule \"" + this + "\" plus \"" + other + "\": "
                    + LIST_ALONE + "; add two list: schedules instead");
        }
        List<Item> joined = new ArrayList<>(items);
        joined.addAll(other.items);
        return new LayerSchedule(joined);
    }

    // ---------------------------------------------------------------------------------------------- resolving

    /**
     * The factor of every block of a model with {@code numLayers} blocks (a fresh array).
     *
     * @throws IllegalArgumentException if {@code numLayers <= 0}, or an explicit layer index of some item lies
     *     outside {@code 0..numLayers-1}; the message names the item, the index and the valid range
     */
    public double[] factors(int numLayers) {
        if (numLayers <= 0) {
            throw new IllegalArgumentException("layer schedule \"" + this + "\": the model must have at least one"
                    + " block, got numLayers = " + numLayers);
        }
        for (Item item : items) {
            String outside = item.outsideIndex(numLayers);
            if (outside != null) {
                String which = items.size() > 1 ? "item \"" + item.text() + "\": " : "";
                throw new IllegalArgumentException("layer schedule \"" + this + "\": " + which + outside
                        + " is outside this model's " + numLayers + (numLayers == 1 ? " block" : " blocks")
                        + " (0.." + (numLayers - 1) + ")");
            }
        }
        double[] out = new double[numLayers];
        for (Item item : items) {
            item.addTo(out);
        }
        for (int l = 0; l < numLayers; l++) {
            if (!Double.isFinite(out[l])) {
                throw new IllegalArgumentException("layer schedule \"" + this + "\": the factors add up to "
                        + out[l] + " at layer " + l);
            }
            out[l] = normalize(out[l]);
        }
        return out;
    }

    /** The factor of one block; same checks as {@link #factors(int)}, plus {@code 0 <= layer < numLayers}. */
    public double factor(int layer, int numLayers) {
        double[] all = factors(numLayers);
        if (layer < 0 || layer >= numLayers) {
            throw new IllegalArgumentException("layer schedule \"" + this + "\": layer " + layer
                    + " is outside this model's " + numLayers + (numLayers == 1 ? " block" : " blocks")
                    + " (0.." + (numLayers - 1) + ")");
        }
        return all[layer];
    }

    /**
     * The items that select no block of a model with {@code numLayers} blocks because they are open ranges starting past
     * its last block (e.g. {@code 7-} on a 5-block model), as a warning text; null when there are none.
     */
    public String unreachable(int numLayers) {
        List<String> open = new ArrayList<>();
        for (Item item : items) {
            if (item instanceof Span s && s.selectsNothing(numLayers)) open.add(item.text());
        }
        if (open.isEmpty()) return null;
        return "layer schedule \"" + this + "\": " + String.join(", ", open) + (open.size() == 1 ? " starts" : " start")
                + " past the last block of this model's " + numLayers + (numLayers == 1 ? " block" : " blocks") + " (0.." + (numLayers - 1)
                + ") and " + (open.size() == 1 ? "selects" : "select") + " no block";
    }

    /** True if no item can give a nonzero factor ({@code none}, factor 0, an all-zero list). */
    public boolean isZero() {
        return items.stream().allMatch(Item::isZero);
    }

    private boolean isList() {
        return items.size() == 1 && items.get(0) instanceof PerLayer;
    }

    // ---------------------------------------------------------------------------------------------- text form

    /**
     * Parses the text form described in the {@linkplain LayerSchedule class documentation}.
     *
     * @throws IllegalArgumentException for any malformed text; the message quotes the whole input and the
     *     offending item and says what was expected
     * @throws NullPointerException if {@code text} is null (the only other exception)
     */
    public static LayerSchedule parse(String text) {
        Objects.requireNonNull(text, "layer schedule text");
        String trimmed = text.strip();
        if (trimmed.isEmpty()) {
            throw error(text, "the schedule is empty; " + EXPECTED_SCHEDULE);
        }
        Matcher list = LIST.matcher(trimmed);
        if (list.matches()) {
            return parseList(text, list.group(1));
        }
        String[] parts = trimmed.split(",", -1);
        List<Item> items = new ArrayList<>(parts.length);
        for (int i = 0; i < parts.length; i++) {
            String item = parts[i].strip();
            if (item.isEmpty()) {
                throw error(text, "item " + (i + 1) + " is empty (stray comma?); " + EXPECTED_ITEM);
            }
            Item parsed = parseItem(text, item);
            if (parsed != null) items.add(parsed);
        }
        return new LayerSchedule(items);
    }

    /** Returns null for {@code none}. */
    private static Item parseItem(String text, String item) {
        int colon = item.indexOf(':');
        String body = (colon < 0 ? item : item.substring(0, colon)).strip();
        if (body.equalsIgnoreCase("list")) {
            throw error(text, "item \"" + item + "\": " + LIST_ALONE + ", e.g. list:0,0,1,1.5");
        }
        Item shape = parseBody(text, item, body);
        double factor = 1;
        if (colon >= 0) {
            String factorText = item.substring(colon + 1).strip();
            if (factorText.isEmpty()) {
                throw error(text, "item \"" + item + "\" is missing its factor after ':'; " + EXPECTED_NUMBER);
            }
            factor = parseNumber(factorText);
            if (Double.isNaN(factor)) {
                throw error(text, "bad factor \"" + factorText + "\" in item \"" + item + "\": " + EXPECTED_NUMBER);
            }
        }
        return shape == null ? null : shape.times(factor);
    }

    /** The item's shape with factor 1, or null for {@code none}. */
    private static Item parseBody(String text, String item, String body) {
        if (body.equalsIgnoreCase("all")) return new Span(0, Span.OPEN, 1);
        if (body.equalsIgnoreCase("none")) return null;
        int tilde = body.indexOf('~');
        if (tilde >= 0) {
            String centreText = body.substring(0, tilde).strip();
            String radiusText = body.substring(tilde + 1).strip();
            if (centreText.isEmpty()) {
                throw error(text, "bump \"" + item + "\" needs a centre layer before '~' (C~R, e.g. 20~6)");
            }
            int centre = parseLayer(text, item, centreText);
            if (radiusText.isEmpty()) {
                throw error(text, "bump \"" + item + "\" needs a radius after '~' (C~R, e.g. 20~6)");
            }
            double radius = parseNumber(radiusText);
            if (Double.isNaN(radius)) {
                throw error(text, "bad bump radius \"" + radiusText + "\" in item \"" + item
                        + "\": expected a finite decimal number > 0, e.g. 20~6 or 20~6.5");
            }
            if (!(radius > 0)) {
                throw error(text, "bump \"" + item + "\": the radius must be > 0, got " + radiusText
                        + " (C~R, e.g. 20~6)");
            }
            return new Bump(centre, normalize(radius), 1);
        }
        int dash = body.indexOf('-');
        if (dash == 0) {
            throw startsWithNumber(body.substring(1).strip()) ? negativeLayer(text, item) : badItem(text, item);
        }
        if (dash > 0) {
            int first = parseLayer(text, item, body.substring(0, dash).strip());
            String lastText = body.substring(dash + 1).strip();
            if (lastText.isEmpty()) return new Span(first, Span.OPEN, 1);
            if (lastText.startsWith("-") && startsWithNumber(lastText.substring(1).strip())) {
                throw negativeLayer(text, item);
            }
            int last = parseLayer(text, item, lastText);
            if (last < first) {
                throw error(text, "interval \"" + item + "\" ends (" + last + ") before it starts (" + first
                        + "); write " + last + "-" + first);
            }
            return new Span(first, last, 1);
        }
        int layer = parseLayer(text, item, body);
        return new Span(layer, layer, 1);
    }

    private static int parseLayer(String text, String item, String number) {
        if (DIGITS.matcher(number).matches()) {
            try {
                return Integer.parseInt(number);
            } catch (NumberFormatException e) {
                throw error(text, "item \"" + item + "\": layer " + number + " is too large");
            }
        }
        if (looksNumeric(number)) {
            if (number.startsWith("-")) throw negativeLayer(text, item);
            throw error(text, "item \"" + item + "\": layer \"" + number
                    + "\" is not a whole number; layer indices are non-negative integers (0, 1, 2, ...)");
        }
        throw badItem(text, item);
    }

    private static LayerSchedule parseList(String text, String body) {
        if (body.isBlank()) {
            throw error(text, "list: needs at least one number, e.g. list:0,0,1,1.5");
        }
        String[] parts = body.split(",", -1);
        double[] values = new double[parts.length];
        for (int i = 0; i < parts.length; i++) {
            String entry = parts[i].strip();
            if (entry.isEmpty()) {
                throw error(text, "list entry " + i + " is empty (stray comma?); expected numbers such as"
                        + " list:0,0,1,1.5");
            }
            double value = parseNumber(entry);
            if (Double.isNaN(value)) {
                throw error(text, "bad list entry " + i + " \"" + entry + "\": " + EXPECTED_NUMBER + " ("
                        + LIST_ALONE + ")");
            }
            values[i] = value;
        }
        return single(new PerLayer(values));
    }

    /** A finite decimal (normalized, never -0.0), or NaN if {@code s} is not one. */
    private static double parseNumber(String s) {
        if (!DECIMAL.matcher(s).matches()) return Double.NaN;
        double value = Double.parseDouble(s);
        return Double.isFinite(value) ? normalize(value) : Double.NaN;
    }

    private static boolean looksNumeric(String s) {
        return DECIMAL.matcher(s).matches();
    }

    /** True for "3", "3-", "3.5-7" etc.: text after a leading '-' that reads as a (negative) layer index. */
    private static boolean startsWithNumber(String s) {
        return !s.isEmpty() && ((s.charAt(0) >= '0' && s.charAt(0) <= '9') || s.charAt(0) == '.');
    }

    private static IllegalArgumentException badItem(String text, String item) {
        return error(text, "bad item \"" + item + "\": " + EXPECTED_ITEM);
    }

    private static IllegalArgumentException negativeLayer(String text, String item) {
        return error(text, "item \"" + item + "\": layer indices must be non-negative integers (0, 1, 2, ...); "
                + EXPECTED_ITEM);
    }

    private static IllegalArgumentException error(String text, String detail) {
        return new IllegalArgumentException("layer schedule \"" + text + "\": " + detail);
    }

    private static void requireLayer(String call, int layer) {
        if (layer < 0) {
            throw new IllegalArgumentException("layer schedule " + call + ": layer " + layer
                    + " is negative; layer indices start at 0");
        }
    }

    private static LayerSchedule single(Item item) {
        return new LayerSchedule(List.of(item));
    }

    /** Turns -0.0 into 0.0 so that equal-looking schedules are equal. */
    private static double normalize(double value) {
        return value + 0.0;
    }

    /** Shortest decimal text that parses back to exactly {@code value}. */
    static String format(double value) {
        if (value == Math.rint(value) && Math.abs(value) < 1e15) {
            return Long.toString((long) value);
        }
        BigDecimal decimal = BigDecimal.valueOf(value).stripTrailingZeros();
        String plain = decimal.toPlainString();
        return plain.length() <= 24 ? plain : decimal.toString();
    }

    /** The canonical text form; {@link #parse(String)} accepts it back as an equal schedule. */
    @Override
    public String toString() {
        if (items.isEmpty()) return "none";
        StringJoiner joiner = new StringJoiner(",");
        for (Item item : items) {
            joiner.add(item.text());
        }
        return joiner.toString();
    }

    @Override
    public boolean equals(Object o) {
        return this == o || (o instanceof LayerSchedule other && items.equals(other.items));
    }

    @Override
    public int hashCode() {
        return items.hashCode();
    }

    // ------------------------------------------------------------------------------------------------- items

    private sealed interface Item permits Weighted, PerLayer {
        /** Adds this item's factors to {@code out} (whose indices have been checked). */
        void addTo(double[] out);

        /** A description of the first explicit index outside {@code 0..numLayers-1}, or null. */
        String outsideIndex(int numLayers);

        Item times(double factor);

        boolean isZero();

        boolean isFinite();

        String text();
    }

    /** An item that scales one shape by one {@code factor}: its scaling, zero and finite tests, and its text are the factor's. */
    private sealed interface Weighted extends Item permits Span, Bump {
        double factor();

        /** The same shape with {@code factor} in place of this one's. */
        Item withFactor(double factor);

        /** The text of the shape, without the factor. */
        String body();

        @Override
        default Item times(double f) {
            return withFactor(normalize(factor() * f));
        }

        @Override
        default boolean isZero() {
            return factor() == 0;
        }

        @Override
        default boolean isFinite() {
            return Double.isFinite(factor());
        }

        @Override
        default String text() {
            return factor() == 1 ? body() : body() + ":" + format(factor());
        }
    }

    /** {@code first..last} inclusive, or {@code first..} when {@code last == OPEN}. */
    private record Span(int first, int last, double factor) implements Weighted {
        static final int OPEN = -1;

        @Override
        public void addTo(double[] out) {
            int end = last == OPEN ? out.length - 1 : last;
            for (int l = first; l <= end; l++) {
                out[l] += factor;
            }
        }

        @Override
        public String outsideIndex(int numLayers) {
            if (last == OPEN) return null; // "N-" past the end selects nothing, as the reference's start_layer <= idx
            if (first >= numLayers) return "layer " + first;
            if (last >= numLayers) return "layer " + last;
            return null;
        }

        /** An open range {@code N-} with {@code N >= numLayers}: it selects no block of this model. */
        boolean selectsNothing(int numLayers) {
            return last == OPEN && first >= numLayers && factor != 0;
        }

        @Override
        public Item withFactor(double f) {
            return new Span(first, last, f);
        }

        @Override
        public String body() {
            if (last == OPEN) return first == 0 ? "all" : first + "-";
            return first == last ? Integer.toString(first) : first + "-" + last;
        }
    }

    private record Bump(int centre, double radius, double factor) implements Weighted {
        @Override
        public void addTo(double[] out) {
            int lo = (int) Math.max(0, Math.ceil(centre - radius));
            int hi = (int) Math.min(out.length - 1, Math.floor(centre + radius));
            for (int l = lo; l <= hi; l++) {
                double d = l - centre;
                if (Math.abs(d) < radius) {
                    out[l] += factor * 0.5 * (1 + Math.cos(Math.PI * d / radius));
                }
            }
        }

        @Override
        public String outsideIndex(int numLayers) {
            return centre >= numLayers ? "bump centre " + centre : null;
        }

        @Override
        public Item withFactor(double f) {
            return new Bump(centre, radius, f);
        }

        @Override
        public String body() {
            return centre + "~" + format(radius);
        }
    }

    private static final class PerLayer implements Item {
        private final double[] values;

        PerLayer(double[] values) {
            this.values = values;
        }

        PerLayer plus(PerLayer other) {
            double[] sum = Arrays.copyOf(values, Math.max(values.length, other.values.length));
            for (int i = 0; i < other.values.length; i++) {
                sum[i] = normalize(sum[i] + other.values[i]);
            }
            return new PerLayer(sum);
        }

        @Override
        public void addTo(double[] out) {
            for (int l = 0; l < Math.min(values.length, out.length); l++) {
                out[l] += values[l];
            }
        }

        @Override
        public String outsideIndex(int numLayers) {
            for (int i = numLayers; i < values.length; i++) {
                if (values[i] != 0) return "list entry " + i + " (" + format(values[i]) + ")";
            }
            return null;
        }

        @Override
        public Item times(double f) {
            double[] scaled = new double[values.length];
            for (int i = 0; i < values.length; i++) {
                scaled[i] = normalize(values[i] * f);
            }
            return new PerLayer(scaled);
        }

        @Override
        public boolean isZero() {
            for (double v : values) {
                if (v != 0) return false;
            }
            return true;
        }

        @Override
        public boolean isFinite() {
            for (double v : values) {
                if (!Double.isFinite(v)) return false;
            }
            return true;
        }

        @Override
        public String text() {
            StringJoiner joiner = new StringJoiner(",", "list:", "");
            for (double v : values) {
                joiner.add(format(v));
            }
            return joiner.toString();
        }

        @Override
        public boolean equals(Object o) {
            return this == o || (o instanceof PerLayer other && Arrays.equals(values, other.values));
        }

        @Override
        public int hashCode() {
            return Arrays.hashCode(values);
        }
    }
}
