package io.mmdit4j.text.clip;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;

/**
 * ftfy 6.1.1's mojibake detectors, {@code badness.BADNESS_RE} (used as {@code is_bad}) and
 * {@code chardata.UTF8_DETECTOR_RE}, as hand-written matchers over the same character categories
 * ({@link FtfyData}).
 *
 * <p>They are not {@link java.util.regex.Pattern}s because Java compiles a class of hundreds of scattered
 * characters into a chain of predicates tested one by one, which made these patterns about 100 times slower
 * than the rest of the tokenizer. The semantics are those of Python's {@code re}: {@link #isBad} reports whether
 * any of the alternatives matches anywhere (Python's {@code '.'}, {@code [^...]}, {@code \s} and {@code \w}
 * work on code points), and {@link #utf8RunAt} gives exactly the match of
 * {@code (?<![strict])([first2][cont]|[first3][cont]{2}|[first4][cont]{3})+} at a position, which is all
 * {@code re.sub} needs to reproduce leftmost, non-overlapping replacement.
 */
final class MojibakeHeuristic {
    private MojibakeHeuristic() {}

    /** One position of a pattern: a set of code points (BMP bitmap), possibly negated or optional. */
    private static final class Atom {
        final BitSet bmp;
        final boolean negated;
        final boolean optional;
        final boolean word; // Python's \w: letters, numbers and '_'

        Atom(BitSet bmp, boolean negated, boolean optional, boolean word) {
            this.bmp = bmp;
            this.negated = negated;
            this.optional = optional;
            this.word = word;
        }

        boolean test(int cp) {
            if (word) return cp == '_' || Character.isLetter(cp) || isNumber(cp);
            boolean in = cp < 0x10000 && bmp.get(cp);
            return in != negated;
        }

        private static boolean isNumber(int cp) {
            int t = Character.getType(cp);
            return t == Character.DECIMAL_DIGIT_NUMBER || t == Character.LETTER_NUMBER || t == Character.OTHER_NUMBER;
        }
    }

    private static BitSet chars(String... sets) {
        BitSet b = new BitSet(0x10000);
        for (String s : sets) s.chars().forEach(b::set);
        return b;
    }

    /** "a-z" style ranges. */
    private static String range(char from, char to) {
        StringBuilder sb = new StringBuilder();
        for (char c = from; c <= to; c++) sb.append(c);
        return sb.toString();
    }

    private static final String LOWER = range('a', 'z');
    private static final String LETTERS = range('A', 'Z') + LOWER;
    /** Python's {@code \s} ({@code str.isspace()}). */
    private static final String PY_SPACE = "\t\n\u000b\f\r\u001c\u001d\u001e\u001f \u0085\u00a0\u1680"
            + range('\u2000', '\u200a') + "\u2028\u2029\u202f\u205f\u3000";

    private static Atom set(String... sets) {
        return new Atom(chars(sets), false, false, false);
    }

    private static final Atom SPACE = set(PY_SPACE);
    private static final Atom OPTIONAL_SPACE = new Atom(chars(PY_SPACE), false, true, false);
    private static final Atom WORD = new Atom(null, false, false, true);
    private static final Atom NOT_LETTER = new Atom(chars(LETTERS), true, false, false);
    private static final Atom NOT_NEWLINE = new Atom(chars("\n"), true, false, false);

    /** A literal character sequence as atoms. */
    private static Atom[] lit(String s) {
        Atom[] out = new Atom[s.length()];
        for (int i = 0; i < out.length; i++) out[i] = set(String.valueOf(s.charAt(i)));
        return out;
    }

    private static Atom[] seq(Object... parts) {
        List<Atom> out = new ArrayList<>();
        for (Object p : parts) {
            if (p instanceof Atom) out.add((Atom) p);
            else out.addAll(List.of((Atom[]) p));
        }
        return out.toArray(new Atom[0]);
    }

    /** The alternatives of BADNESS_RE, in ftfy's order; the one at {@link #ANCHORED} starts with '^'. */
    private static final Atom[][] BADNESS;
    private static final int ANCHORED;
    /** For each BMP character, the alternatives whose first atom accepts it. */
    private static final long[] FIRST = new long[0x10000];
    /** The alternatives whose first atom accepts characters outside the BMP. */
    private static final long FIRST_ASTRAL;

    static {
        String c1 = FtfyData.C1, bad = FtfyData.BAD, la = FtfyData.LOWER_ACCENTED, ua = FtfyData.UPPER_ACCENTED,
                box = FtfyData.BOX, sp = FtfyData.START_PUNCTUATION, ep = FtfyData.END_PUNCTUATION,
                cur = FtfyData.CURRENCY, num = FtfyData.NUMERIC, lc = FtfyData.LOWER_COMMON, uc = FtfyData.UPPER_COMMON,
                kao = FtfyData.KAOMOJI, common = FtfyData.COMMON;
        Atom arabic = set(common, cur, bad, num, sp, "\u0178\u0160\u00ae\u00b0\u00b5\u00bb");
        List<Atom[]> alt = new ArrayList<>();
        alt.add(seq(set(c1)));
        alt.add(seq(set(bad, la, ua, box, sp, ep, cur, num), set(bad)));
        alt.add(seq(set(LETTERS), set(lc, uc), set(bad)));
        alt.add(seq(set(bad), set(la, ua, box, sp, ep, cur, num)));
        alt.add(seq(set(la, lc, box, ep, cur, num), set(ua)));
        alt.add(seq(set(box, ep, cur, num), set(la)));
        alt.add(seq(set(la, box, ep), set(cur)));
        alt.add(seq(SPACE, set(ua), set(cur)));
        alt.add(seq(set(ua, box), set(num)));
        alt.add(seq(set(la, ua, box, cur, ep), set(sp), set(num)));
        alt.add(seq(set(la, ua, cur, num, box), set(ep), set(sp)));
        alt.add(seq(set(cur, num, box), set(sp)));
        alt.add(seq(set(LOWER), set(ua), set(sp, cur)));
        alt.add(seq(set(box), set(kao)));
        alt.add(seq(set(la, ua, cur, num, sp, ep), set(box)));
        alt.add(seq(set(box), set(ep)));
        alt.add(seq(set(la, ua), set(ep), WORD));
        // The ligature oe when not followed by an unaccented Latin letter
        alt.add(seq(set("\u0152\u0153"), NOT_LETTER));
        // Common Windows-1252 2-character mojibake that isn't covered by the cases above
        alt.add(seq(set("\u00c2\u00c3\u00ce\u00d0"),
                set("\u20ac\u0160\u0161\u00a2\u00a3\u0178\u017e\u00a0\u00ad\u00ae\u00a9\u00b0\u00b7\u00bb", sp, ep, "\u2013\u2014\u00b4")));
        alt.add(seq(lit("\u00d7"), set("\u00b2\u00b3")));
        // Windows-1252 mojibake of Arabic words: four characters
        alt.add(seq(set("\u00d8\u00d9"), arabic, set("\u00d8\u00d9"), arabic));
        // Windows-1252 mojibake that starts 3-character sequences for some South Asian alphabets
        alt.add(seq(lit("\u00e0"), set("\u00b2\u00b5\u00b9\u00bc\u00bd\u00be")));
        // MacRoman mojibake that isn't covered by the cases above
        alt.add(seq(lit("\u221a"), set("\u00b1\u2202\u2020\u2260\u00ae\u2122\u00b4\u2264\u2265\u00a5\u00b5\u00f8")));
        alt.add(seq(lit("\u2248"), set("\u00b0\u00a2")));
        alt.add(seq(lit("\u201a\u00c4"), set("\u00ec\u00ee\u00ef\u00f2\u00f4\u00fa\u00f9\u00fb\u2020\u00b0\u00a2\u03c0")));
        alt.add(seq(lit("\u201a"), set("\u00e2\u00f3"), set("\u00e0\u00e4\u00b0\u00ea")));
        // Windows-1251 mojibake of characters in the U+2000 range
        alt.add(lit("\u0432\u0402"));
        // Windows-1251 mojibake of Latin-1 characters and/or the Cyrillic alphabet
        alt.add(seq(set("\u0412\u0413\u0420\u0421"), set(c1, bad, sp, ep, cur, "\u00b0\u00b5"), set("\u0412\u0413\u0420\u0421")));
        alt.add(seq(lit("\u0413\u045e\u0412\u0402\u0412"), NOT_NEWLINE, set(LETTERS, " ")));
        // Windows-1252 encodings of 'à' and 'á', as well as \xa0 itself
        alt.add(seq(lit("\u00c3"), set("\u00a0\u00a1")));
        alt.add(seq(set(LOWER), OPTIONAL_SPACE, set("\u00c3\u00c2"), set(" ")));
        int anchored = alt.size();
        alt.add(seq(set("\u00c3\u00c2"), set(" "))); // ^[ÃÂ][ ]
        // Cases where Â precedes a character as an encoding of exactly the same character
        alt.add(seq(set(LOWER, ".,?!", ep), lit("\u00c2"), set(" ", sp, ep)));
        // Windows-1253 mojibake of characters in the U+2000 range
        alt.add(seq(lit("\u03b2\u20ac"), set("\u2122\u00a0\u0386\u00ad\u00ae\u00b0")));
        // Windows-1253 mojibake of Latin-1 characters and/or the Greek alphabet
        alt.add(seq(set("\u0392\u0393\u039e\u039f"), set(c1, bad, sp, ep, cur, "\u00b0"), set("\u0392\u0393\u039e\u039f")));
        if (alt.size() > 64) throw new AssertionError("too many alternatives for a long mask");
        BADNESS = alt.toArray(new Atom[0][]);
        ANCHORED = anchored;
        long astral = 0;
        for (int a = 0; a < BADNESS.length; a++) {
            Atom first = BADNESS[a][0];
            for (int c = 0; c < 0x10000; c++) if (first.test(c)) FIRST[c] |= 1L << a;
            if (first.test(0x10000)) astral |= 1L << a;
        }
        FIRST_ASTRAL = astral;
    }

    /** {@code badness.is_bad}: whether any BADNESS_RE alternative matches anywhere in the text. */
    static boolean isBad(String text) {
        int n = text.length();
        for (int i = 0; i < n; ) {
            int cp = text.codePointAt(i);
            int next = i + Character.charCount(cp);
            long mask = cp < 0x10000 ? FIRST[cp] : FIRST_ASTRAL;
            if (i != 0) mask &= ~(1L << ANCHORED);
            while (mask != 0) {
                int a = Long.numberOfTrailingZeros(mask);
                mask &= mask - 1;
                if (matches(BADNESS[a], 1, text, next)) return true;
            }
            i = next;
        }
        return false;
    }

    private static boolean matches(Atom[] atoms, int k, String text, int pos) {
        if (k == atoms.length) return true;
        Atom atom = atoms[k];
        if (pos < text.length()) {
            int cp = text.codePointAt(pos);
            if (atom.test(cp) && matches(atoms, k + 1, text, pos + Character.charCount(cp))) return true;
        }
        return atom.optional && matches(atoms, k + 1, text, pos);
    }

    // ---------------------------------------------------------------------------------------------------------
    // UTF8_DETECTOR_RE

    private static final BitSet FIRST_OF_2 = chars(FtfyData.UTF8_FIRST_OF_2);
    private static final BitSet FIRST_OF_3 = chars(FtfyData.UTF8_FIRST_OF_3);
    private static final BitSet FIRST_OF_4 = chars(FtfyData.UTF8_FIRST_OF_4);
    private static final BitSet CONTINUATION = chars(FtfyData.UTF8_CONTINUATION);
    private static final BitSet CONTINUATION_STRICT = chars(FtfyData.UTF8_CONTINUATION_STRICT);

    /**
     * The end of the UTF8_DETECTOR_RE match that starts at {@code i}, or -1 when none starts there. (All the
     * characters involved are in the BMP, so char and code point positions agree.)
     */
    static int utf8RunAt(String text, int i) {
        if (i > 0 && CONTINUATION_STRICT.get(text.charAt(i - 1))) return -1;
        int n = text.length();
        int p = i;
        while (p < n) {
            char c = text.charAt(p);
            if (FIRST_OF_2.get(c) && continuations(text, p + 1, 1)) {
                p += 2;
            } else if (FIRST_OF_3.get(c) && continuations(text, p + 1, 2)) {
                p += 3;
            } else if (FIRST_OF_4.get(c) && continuations(text, p + 1, 3)) {
                p += 4;
            } else {
                break;
            }
        }
        return p > i ? p : -1;
    }

    private static boolean continuations(String text, int from, int count) {
        if (from + count > text.length()) return false;
        for (int k = 0; k < count; k++) if (!CONTINUATION.get(text.charAt(from + k))) return false;
        return true;
    }

    /** {@code UTF8_DETECTOR_RE.search(text) is not None}. */
    static boolean hasUtf8Run(String text) {
        for (int i = 0; i < text.length(); i++) if (utf8RunAt(text, i) >= 0) return true;
        return false;
    }
}
