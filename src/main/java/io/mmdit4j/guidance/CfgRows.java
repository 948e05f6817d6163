package io.mmdit4j.guidance;

import java.util.Locale;

/**
 * Which transformer rows of a classifier-free-guidance batch {@code [negative; positive]} a guidance direction steers
 * (METHOD.md §5). Without CFG there is only the conditional half, which every choice but {@link #REFERENCE_PAIR} guides
 * with {@code +w}.
 */
public enum CfgRows {
    /** {@code +w·delta} on both halves: the SD3.5 reference. */
    BOTH(1, 1),
    /** {@code +w·delta} on the conditional half only (COSMOS-style). */
    COND(0, 1),
    /** {@code +w·delta} on the conditional half, {@code −w·delta} on the unconditional half (HiDream-style). */
    COND_NEG(-1, 1),
    /**
     * The HiDream reference code's rule, which looks at the transformer batch instead of the CFG halves: {@code −w·delta}
     * on row 0 and {@code +w·delta} on row 1 of <em>any</em> batch of exactly 2 rows (meant for the CFG pair [uncond, cond],
     * but also applied to two prompts without CFG), {@code +w·delta} on every row of any other batch.
     */
    REFERENCE_PAIR(-1, 1);

    /** The sign of the unconditional half. */
    public final double uncond;
    /** The sign of the conditional half. */
    public final double cond;

    CfgRows(double uncond, double cond) {
        this.uncond = uncond;
        this.cond = cond;
    }

    /** {@code both}, {@code cond}, {@code cond-neg} or {@code reference-pair} (case-insensitive; {@code _} for {@code -}). */
    public static CfgRows parse(String s) {
        String k = s == null ? "" : s.trim().toLowerCase(Locale.ROOT).replace('_', '-');
        switch (k) {
            case "both": return BOTH;
            case "cond": return COND;
            case "cond-neg": return COND_NEG;
            case "reference-pair": return REFERENCE_PAIR;
            default: throw new IllegalArgumentException("guidance rows '" + s + "': expected both, cond or cond-neg (or reference-pair, the HiDream reference code's batch-of-2 rule)");
        }
    }

    @Override
    public String toString() {
        return name().toLowerCase(Locale.ROOT).replace('_', '-');
    }
}
