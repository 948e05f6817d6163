package io.mmdit4j.io;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Seeded mutations of JSON text for the fuzz tests: hostile numbers and values in place of tokens, then byte damage. */
public final class JsonMutations {
    private JsonMutations() {}

    private static final Pattern NUMBER = Pattern.compile("-?\\d+(\\.\\d+)?([eE][+-]?\\d+)?");
    public static final Pattern STRING = Pattern.compile("\"[^\"\\\\]*\"");
    private static final String[] NUMBERS = {"0", "-1", "1", "3", "16", "-0", "4.0", "1.5", "1E2", "1e309", "-1e309",
            "9223372036854775807", "9223372036854775808", "-9223372036854775809", "18446744073709551615",
            "18446744073709551616", "18446744073709551632", "36893488147419103232", "123456789012345678901234567890123456789",
            "4294967296", "2147483648", "NaN", "Infinity", "0x10", "00", "1" + "0".repeat(2000)};
    private static final String[] VALUES = {"null", "true", "false", "{}", "[]", "[0]", "[0, 16]", "[16, 0]", "\"\"", "\"F32\"",
            "\"BF16\"", "\"\\u0000\"", "\"\\ud800\"", "\"a\\u001b[2J\"", "{\"a\":1}", "[\"1\"]", "\"__metadata__\"", "1", "-5",
            "\"" + "x".repeat(5000) + "\"", "[".repeat(1500) + "]".repeat(1500), "{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}"};
    private static final String INSERTS = "{}[]\":,0-e.\\ \u00e9\u0000";
    private static final byte[][] BAD_UTF8 = {{(byte) 0xff}, {(byte) 0xc0, (byte) 0x80}, {(byte) 0xed, (byte) 0xa0, (byte) 0x80},
            {(byte) 0xe2, (byte) 0x82}, {(byte) 0xf8, (byte) 0x88, (byte) 0x80, (byte) 0x80, (byte) 0x80}, {(byte) 0x80}};

    /**
     * {@code json} after one to three mutations of its tokens (numbers, strings, arrays and objects replaced by hostile
     * values, entries duplicated, characters inserted or deleted) or, from the first byte-level one on, of its UTF-8 bytes.
     */
    public static byte[] mutate(String json, Random r) {
        String text = json;
        byte[] bytes = null;
        int n = 1 + r.nextInt(3);
        for (int k = 0; k < n; k++) {
            int what = r.nextInt(10);
            if (bytes == null && what < 7) {
                text = switch (what) {
                    case 0, 1 -> replace(text, NUMBER, NUMBERS[r.nextInt(NUMBERS.length)], r);
                    case 2, 3 -> replace(text, STRING, VALUES[r.nextInt(VALUES.length)], r);
                    case 4 -> replace(text, Pattern.compile("\\[[^\\[\\]]*\\]|\\{[^{}]*\\}"), VALUES[r.nextInt(VALUES.length)], r);
                    case 5 -> { // a duplicated entry
                        Matcher m = Pattern.compile("\"[^\"]*\":\\{[^{}]*\\}").matcher(text);
                        yield m.find() ? text.substring(0, m.start()) + m.group() + "," + text.substring(m.start()) : text;
                    }
                    default -> { // an inserted or deleted character
                        int at = r.nextInt(text.length() + 1);
                        yield r.nextBoolean() ? text.substring(0, at) + INSERTS.charAt(r.nextInt(INSERTS.length())) + text.substring(at)
                                : at < text.length() ? text.substring(0, at) + text.substring(at + 1) : text;
                    }
                };
                continue;
            }
            if (bytes == null) bytes = text.getBytes(StandardCharsets.UTF_8);
            if (what == 7) { // invalid UTF-8, inside a string or anywhere
                Matcher m = STRING.matcher(text);
                int at = m.find() && r.nextBoolean() && text.equals(new String(bytes, StandardCharsets.UTF_8))
                        ? text.substring(0, m.start() + 1).getBytes(StandardCharsets.UTF_8).length : r.nextInt(bytes.length + 1);
                byte[] bad = BAD_UTF8[r.nextInt(BAD_UTF8.length)];
                byte[] out = new byte[bytes.length + bad.length];
                System.arraycopy(bytes, 0, out, 0, at);
                System.arraycopy(bad, 0, out, at, bad.length);
                System.arraycopy(bytes, at, out, at + bad.length, bytes.length - at);
                bytes = out;
            } else {
                bytes = mutateBytes(bytes, r);
            }
        }
        return bytes != null ? bytes : text.getBytes(StandardCharsets.UTF_8);
    }

    /** {@code text} with one random match of {@code p} replaced by {@code with}. */
    public static String replace(String text, Pattern p, String with, Random r) {
        List<int[]> spans = new ArrayList<>();
        Matcher m = p.matcher(text);
        while (m.find()) spans.add(new int[] {m.start(), m.end()});
        if (spans.isEmpty()) return text;
        int[] s = spans.get(r.nextInt(spans.size()));
        return text.substring(0, s[0]) + with + text.substring(s[1]);
    }

    private static byte[] mutateBytes(byte[] b, Random r) {
        if (b.length == 0) return new byte[] {(byte) r.nextInt(256)};
        switch (r.nextInt(4)) {
            case 0 -> {
                b = b.clone();
                b[r.nextInt(b.length)] = (byte) r.nextInt(256);
                return b;
            }
            case 1 -> {
                b = b.clone();
                b[r.nextInt(b.length)] ^= (byte) (1 << r.nextInt(8));
                return b;
            }
            case 2 -> {
                return Arrays.copyOf(b, r.nextInt(b.length + 1));
            }
            default -> {
                int at = r.nextInt(b.length);
                return Arrays.copyOfRange(b, at, b.length);
            }
        }
    }
}
