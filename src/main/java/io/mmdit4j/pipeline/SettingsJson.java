package io.mmdit4j.pipeline;

import com.fasterxml.jackson.databind.JsonNode;

import java.math.BigInteger;
import java.util.ArrayList;
import java.util.List;

/**
 * Strict reading of settings JSON (recorded images, model descriptors, sweep and server requests): a key that is
 * present must have the expected type and range, else one clear message naming where it came from and the key.
 * Absent (or JSON null) keys read as null, so defaults can apply.
 */
public final class SettingsJson {
    private static final BigInteger TWO_64 = BigInteger.ONE.shiftLeft(64);

    private SettingsJson() {}

    public static String text(JsonNode j, String key, String where) {
        JsonNode n = j.get(key);
        if (absent(n)) return null;
        if (!n.isTextual()) throw bad(where, key, "a string", n);
        return n.asText();
    }

    public static Double number(JsonNode j, String key, String where) {
        JsonNode n = j.get(key);
        if (absent(n)) return null;
        if (!n.isNumber() || !Double.isFinite(n.asDouble())) throw bad(where, key, "a finite number", n);
        return n.asDouble();
    }

    /** A whole number in {@code min..max}. */
    public static Integer integer(JsonNode j, String key, int min, int max, String where) {
        JsonNode n = j.get(key);
        if (absent(n)) return null;
        if (!n.isIntegralNumber() || !n.canConvertToInt() || n.asInt() < min || n.asInt() > max) {
            throw bad(where, key, "a whole number in " + min + ".." + max, n);
        }
        return n.asInt();
    }

    public static Boolean bool(JsonNode j, String key, String where) {
        JsonNode n = j.get(key);
        if (absent(n)) return null;
        if (!n.isBoolean()) throw bad(where, key, "true or false", n);
        return n.asBoolean();
    }

    /** A seed: a whole number in 0..2^64−1 (PyTorch's range), returned as its 64-bit pattern. */
    public static Long seed(JsonNode j, String key, String where) {
        JsonNode n = j.get(key);
        if (absent(n)) return null;
        return seedValue(n, where + ": '" + key + "'");
    }

    static long seedValue(JsonNode n, String what) {
        if (!n.isIntegralNumber()) throw new InvalidRequestException(what + " must be a whole number in 0..2^64-1, got " + n);
        BigInteger v = n.bigIntegerValue();
        if (v.signum() < 0 || v.compareTo(TWO_64) >= 0) throw new InvalidRequestException(what + " must be in 0..2^64-1, got " + v);
        return v.longValue();
    }

    /** A list of strings; a single string reads as a one-element list. */
    public static List<String> texts(JsonNode j, String key, String where) {
        JsonNode n = j.get(key);
        if (absent(n)) return null;
        List<String> out = new ArrayList<>();
        if (n.isTextual()) out.add(n.asText());
        else if (n.isArray()) {
            for (JsonNode e : n) {
                if (!e.isTextual()) throw bad(where, key, "a list of strings", n);
                out.add(e.asText());
            }
        } else throw bad(where, key, "a string or a list of strings", n);
        return out;
    }

    public static double[] numbers(JsonNode j, String key, String where) {
        JsonNode n = j.get(key);
        if (absent(n)) return null;
        if (!n.isArray()) throw bad(where, key, "a list of numbers", n);
        double[] out = new double[n.size()];
        for (int i = 0; i < out.length; i++) {
            if (!n.get(i).isNumber() || !Double.isFinite(n.get(i).asDouble())) throw bad(where, key, "a list of finite numbers", n);
            out[i] = n.get(i).asDouble();
        }
        return out;
    }

    /** The unsigned decimal text of a seed's 64-bit pattern (what PyTorch's {@code manual_seed} receives). */
    public static String seedText(long seed) {
        return Long.toUnsignedString(seed);
    }

    /** A seed as a JSON number node (values of 2^63 and more as big integers). */
    public static JsonNode seedNode(long seed) {
        return seed >= 0 ? com.fasterxml.jackson.databind.node.LongNode.valueOf(seed)
                : com.fasterxml.jackson.databind.node.BigIntegerNode.valueOf(new BigInteger(Long.toUnsignedString(seed)));
    }

    private static boolean absent(JsonNode n) {
        return n == null || n.isNull() || n.isMissingNode();
    }

    static InvalidRequestException bad(String where, String key, String expected, JsonNode got) {
        String text = got.toString();
        if (text.length() > 80) text = text.substring(0, 77) + "...";
        return new InvalidRequestException(where + ": '" + key + "' must be " + expected + ", got " + text);
    }
}
