package io.mmdit4j.text.t5;

/** Python's {@code str.lstrip()} / {@code str.rstrip()} with no argument ({@code str.isspace} characters). */
final class PyStrings {
    private PyStrings() {}

    /** Python 3.11 {@code str.isspace()} for one code point (Unicode 14: Zs, or bidi class WS, B or S). */
    static boolean isSpace(int c) {
        if (c < 128) return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F);
        return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029
                || c == 0x202F || c == 0x205F || c == 0x3000;
    }

    static String lstrip(String s) {
        int i = 0, n = s.length();
        while (i < n && isSpace(s.charAt(i))) i++;
        return s.substring(i);
    }

    static String rstrip(String s) {
        int n = s.length();
        while (n > 0 && isSpace(s.charAt(n - 1))) n--;
        return s.substring(0, n);
    }
}
