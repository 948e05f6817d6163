package io.mmdit4j.golden;

import java.util.Arrays;
import java.util.Locale;

/**
 * One output compared with its reference: pass when {@code |actual - expected| <= atol + rtol·|expected|}
 * element-wise (the rule of the golden data's {@code compare} entries).
 */
public record Comparison(String output, double maxAbs, double maxRel, double atol, double rtol, boolean pass, String note) {

    public static Comparison of(String output, float[] actual, long[] actualShape, float[] expected, long[] expectedShape,
                                double atol, double rtol) {
        if (!Arrays.equals(actualShape, expectedShape)) {
            return new Comparison(output, Double.NaN, Double.NaN, atol, rtol, false,
                    "shape " + Arrays.toString(actualShape) + ", expected " + Arrays.toString(expectedShape));
        }
        double maxAbs = 0, maxRel = 0;
        boolean pass = true;
        for (int i = 0; i < expected.length; i++) {
            double e = expected[i], a = actual[i];
            double diff = Math.abs(a - e);
            if (Double.isNaN(diff)) {
                if (!(Double.isNaN(a) && Double.isNaN(e))) {
                    pass = false;
                    maxAbs = Double.NaN;
                }
                continue;
            }
            if (diff > maxAbs) maxAbs = diff;
            if (e != 0) maxRel = Math.max(maxRel, diff / Math.abs(e));
            if (diff > atol + rtol * Math.abs(e)) pass = false;
        }
        return new Comparison(output, maxAbs, maxRel, atol, rtol, pass, null);
    }

    /** {@code max_abs=… max_rel=… (atol=… rtol=…)}. */
    public String summary() {
        String s = String.format(Locale.ROOT, "max_abs=%.3g max_rel=%.3g (atol=%s rtol=%s)", maxAbs, maxRel, num(atol), num(rtol));
        return note == null ? s : s + " " + note;
    }

    private static String num(double v) {
        return new java.math.BigDecimal(Double.toString(v)).stripTrailingZeros().toPlainString();
    }
}
