package io.mmdit4j.text.clip;

import java.math.BigInteger;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A port of {@code ftfy.fix_text} from ftfy 6.1.1 with its default {@code TextFixerConfig}, as transformers'
 * {@code CLIPTokenizer} calls it when ftfy is installed.
 *
 * <p>{@link #fixText(String)} splits the text after each {@code '\n'} (and every 1,000,000 code points), and
 * fixes each segment until nothing changes, applying in this order:
 * <ol>
 * <li>{@code unescape_html} ("auto"): HTML entities ({@code &amp;amp;}, {@code &amp;eacute;}, {@code &amp;#233;},
 *     {@code &amp;#xE9;}, ftfy's all-caps spellings such as {@code &amp;EACUTE;}) are decoded, but only while no
 *     {@code '<'} has been seen in this or an earlier segment (text with tags is left as HTML);</li>
 * <li>{@code fix_encoding}: when the text looks like mojibake (ftfy's {@code badness} heuristic), re-encode it in
 *     the first single-byte encoding that can hold it (Latin-1, sloppy Windows-1252/1251/1250/1253/1254,
 *     ISO-8859-2, MacRoman, CP437) and decode as UTF-8, with the {@code restore_byte_a0} and
 *     {@code replace_lossy_sequences} byte fixes and the {@code utf-8-variants} codec (CESU-8, Java's
 *     {@code C0 80}); otherwise {@code decode_inconsistent_utf8} (fix only the UTF-8-looking runs), Latin-1 read
 *     as Windows-1252, and {@code fix_c1_controls}; repeated until stable;</li>
 * <li>{@code fix_c1_controls}, {@code fix_latin_ligatures} (ﬁ → fi ...), {@code fix_character_width} (fullwidth
 *     → ASCII, halfwidth katakana → fullwidth, U+3000 → space), {@code uncurl_quotes} (‘’‚‛ʼ → ', “”„‟ → "),
 *     {@code fix_line_breaks}, {@code fix_surrogates}, {@code remove_terminal_escapes},
 *     {@code remove_control_chars};</li>
 * <li>NFC normalisation.</li>
 * </ol>
 *
 * <p>Java strings can hold unpaired UTF-16 surrogates, as Python strings can: like ftfy's {@code fix_surrogates},
 * each lone surrogate becomes U+FFFD (a valid pair is already one code point in Java). Nothing here throws on
 * any input.
 *
 * <p>Character data (NFC, letter categories) is Java's: Unicode 13 on Java 17, where Python 3.11 has Unicode 14.
 * The mojibake detectors are in {@link MojibakeHeuristic}, the tables in {@link FtfyData}.
 *
 * <p>Bounds (documented departures, never reached by prompts of normal size): Python repeats the fixing loop
 * until the text stops changing. Here each loop stops after at most {@code max(8, min(1000, 16M / length))}
 * rounds, so a megabyte of nested escapes such as {@code &amp;amp;amp;...} cannot run for minutes; the result
 * is then the text after the last round.
 */
public final class TextFixer {
    private TextFixer() {}

    /** ftfy's {@code max_decode_length}. */
    static final int MAX_DECODE_LENGTH = 1_000_000;

    // ---------------------------------------------------------------------------------------------------------
    // Tables

    private static final int N_ENC = FtfyData.CHARMAPS.length;
    /** For each charmap encoding, char -> byte + 1 (0 = not encodable), over the BMP. */
    private static final byte[][] ENCODE = new byte[N_ENC][];
    /** For each charmap encoding, whether a char may appear in text that ftfy considers encodable. */
    private static final boolean[][] POSSIBLE = new boolean[N_ENC][];
    private static final String SLOPPY_1252 = FtfyData.CHARMAPS[1];
    private static final boolean[] W1252_UNDEFINED = new boolean[256];

    static {
        for (int e = 0; e < N_ENC; e++) {
            String table = FtfyData.CHARMAPS[e];
            byte[] enc = new byte[0x10000];
            boolean[] ok = new boolean[0x10000];
            for (int b = 0; b < 256; b++) enc[table.charAt(b)] = (byte) (b + 1);
            // chardata._build_regexes: ASCII except 0x1A, plus what bytes 0x80..0xFF and 0x1A decode to.
            for (int c = 0; c < 0x80; c++) if (c != 0x1A) ok[c] = true;
            for (int b = 0x80; b < 0x100; b++) ok[table.charAt(b)] = true;
            ok[table.charAt(0x1A)] = true;
            ENCODE[e] = enc;
            POSSIBLE[e] = ok;
        }
        for (int b : FtfyData.WINDOWS_1252_UNDEFINED) W1252_UNDEFINED[b] = true;
    }

    private static final Map<String, String> HTML_ENTITIES = new HashMap<>(8192);
    private static final char[] WIDTH_KEY_INDEX = new char[0x10000];
    private static final List<String> WIDTH_VALUES = new ArrayList<>();

    static {
        StringBuilder all = new StringBuilder();
        for (String chunk : FtfyData.HTML_ENTITIES) all.append(chunk);
        int i = 0;
        while (i < all.length()) {
            int sep = all.indexOf("\u0001", i);
            int end = all.indexOf("\u0002", sep);
            HTML_ENTITIES.put(all.substring(i, sep), all.substring(sep + 1, end));
            i = end + 1;
        }
        String w = FtfyData.WIDTH_MAP;
        i = 0;
        while (i < w.length()) {
            int end = w.indexOf('\u0002', i + 1);
            WIDTH_VALUES.add(w.substring(i + 1, end));
            WIDTH_KEY_INDEX[w.charAt(i)] = (char) WIDTH_VALUES.size(); // 1-based
            i = end + 1;
        }
    }

    /** chardata.LIGATURES. */
    private static final Map<Character, String> LIGATURES = Map.ofEntries(
            Map.entry('\u0132', "IJ"), Map.entry('\u0133', "ij"), Map.entry('\u0149', "\u02bcn"),
            Map.entry('\u01f1', "DZ"), Map.entry('\u01f2', "Dz"), Map.entry('\u01f3', "dz"),
            Map.entry('\u01c4', "D\u017d"), Map.entry('\u01c5', "D\u017e"), Map.entry('\u01c6', "d\u017e"),
            Map.entry('\u01c7', "LJ"), Map.entry('\u01c8', "Lj"), Map.entry('\u01c9', "lj"),
            Map.entry('\u01ca', "NJ"), Map.entry('\u01cb', "Nj"), Map.entry('\u01cc', "nj"),
            Map.entry('\ufb00', "ff"), Map.entry('\ufb01', "fi"), Map.entry('\ufb02', "fl"),
            Map.entry('\ufb03', "ffi"), Map.entry('\ufb04', "ffl"), Map.entry('\ufb05', "\u017ft"),
            Map.entry('\ufb06', "st"));

    // ---------------------------------------------------------------------------------------------------------
    // Regular expressions (the mojibake detectors are in MojibakeHeuristic)

    // Byte patterns, applied to byte strings held as Latin-1 strings (one char per byte).
    /** chardata.ALTERED_UTF8_RE. */
    private static final Pattern ALTERED_UTF8_RE = Pattern.compile(
            "[\\xc2\\xc3\\xc5\\xce\\xd0\\xd9][ ]"
                    + "|[\\xe2\\xe3][ ][\\x80-\\x84\\x86-\\x9f\\xa1-\\xbf]"
                    + "|[\\xe0-\\xe3][\\x80-\\x84\\x86-\\x9f\\xa1-\\xbf][ ]"
                    + "|[\\xf0][ ][\\x80-\\xbf][\\x80-\\xbf]"
                    + "|[\\xf0][\\x80-\\xbf][ ][\\x80-\\xbf]"
                    + "|[\\xf0][\\x80-\\xbf][\\x80-\\xbf][ ]");
    /** fixes.A_GRAVE_WORD_RE. */
    private static final Pattern A_GRAVE_WORD_RE = Pattern.compile("\\xc3 (?! |quele|quela|quilo|s )");
    /** chardata.LOSSY_UTF8_RE. */
    private static final Pattern LOSSY_UTF8_RE = Pattern.compile(
            "[\\xc2-\\xdf][\\x1a]"
                    + "|[\\xc2-\\xc3][?]"
                    + "|\\xed[\\xa0-\\xaf][\\x1a?]\\xed[\\xb0-\\xbf][\\x1a?\\x80-\\xbf]"
                    + "|\\xed[\\xa0-\\xaf][\\x1a?\\x80-\\xbf]\\xed[\\xb0-\\xbf][\\x1a?]"
                    + "|[\\xe0-\\xef][\\x1a?][\\x1a\\x80-\\xbf]"
                    + "|[\\xe0-\\xef][\\x1a\\x80-\\xbf][\\x1a?]"
                    + "|[\\xf0-\\xf4][\\x1a?][\\x1a\\x80-\\xbf][\\x1a\\x80-\\xbf]"
                    + "|[\\xf0-\\xf4][\\x1a\\x80-\\xbf][\\x1a?][\\x1a\\x80-\\xbf]"
                    + "|[\\xf0-\\xf4][\\x1a\\x80-\\xbf][\\x1a\\x80-\\xbf][\\x1a?]"
                    + "|\\x1a");
    /** chardata.HTML_ENTITY_RE. */
    private static final Pattern HTML_ENTITY_RE = Pattern.compile("&#?[0-9A-Za-z]{1,24};");
    /** fixes.ANSI_RE (Python's \d is any decimal digit). */
    private static final Pattern ANSI_RE = Pattern.compile("\u001b\\[((?:\\p{Nd}|;)*)([a-zA-Z])");

    // ---------------------------------------------------------------------------------------------------------
    // fix_text

    /** {@code ftfy.fix_text(text)} with ftfy 6.1.1's defaults. Never throws; {@code null} gives {@code null}. */
    public static String fixText(String text) {
        if (text == null) return null;
        StringBuilder out = new StringBuilder(text.length());
        boolean unescapeHtml = true; // "auto" until a segment contains '<'
        int pos = 0;
        int n = text.length();
        while (pos < n) {
            int textbreak = text.indexOf('\n', pos) + 1;
            if (textbreak == 0) textbreak = n;
            if (text.codePointCount(pos, textbreak) > MAX_DECODE_LENGTH) {
                textbreak = text.offsetByCodePoints(pos, MAX_DECODE_LENGTH);
            }
            String segment = text.substring(pos, textbreak);
            if (unescapeHtml && segment.indexOf('<') >= 0) unescapeHtml = false;
            out.append(fixSegment(segment, unescapeHtml));
            pos = textbreak;
        }
        return out.toString();
    }

    private static int roundLimit(int length) {
        return Math.max(8, Math.min(1000, 16_000_000 / Math.max(1, length)));
    }

    /** {@code fix_and_explain} without the explanation. */
    static String fixSegment(String text, boolean unescapeHtml) {
        int limit = roundLimit(text.length());
        for (int round = 0; round < limit; round++) {
            String orig = text;
            if (unescapeHtml) text = unescapeHtml(text);
            text = fixEncoding(text);
            text = fixC1Controls(text);
            text = fixLatinLigatures(text);
            text = fixCharacterWidth(text);
            text = uncurlQuotes(text);
            text = fixLineBreaks(text);
            text = fixSurrogates(text);
            text = removeTerminalEscapes(text);
            text = removeControlChars(text);
            if (!Normalizer.isNormalized(text, Normalizer.Form.NFC)) text = Normalizer.normalize(text, Normalizer.Form.NFC);
            if (text.equals(orig)) return text;
        }
        return text;
    }

    // ---------------------------------------------------------------------------------------------------------
    // fix_encoding

    /** {@code ftfy.fix_encoding}: repeat single encoding-fix steps until the text stops changing. */
    static String fixEncoding(String text) {
        int limit = roundLimit(text.length());
        for (int round = 0; round < limit; round++) {
            String prev = text;
            text = fixEncodingOneStep(text);
            if (text.equals(prev)) return text;
        }
        return text;
    }

    /** Signals that bytes are not valid (variant) UTF-8; carries no stack trace. */
    private static final class NotUtf8 extends Exception {
        private static final long serialVersionUID = 1L;

        NotUtf8() {
            super(null, null, false, false);
        }
    }

    private static final NotUtf8 NOT_UTF8 = new NotUtf8();

    /** {@code _fix_encoding_one_step_and_explain}. */
    static String fixEncodingOneStep(String text) {
        if (text.isEmpty()) return text;
        if (isAscii(text) || !isBad(text)) return text;

        boolean latin1Possible = false;
        for (int e = 0; e < N_ENC; e++) {
            if (!possibleEncoding(text, e)) continue;
            if (e == 0) latin1Possible = true;
            String bytes = encode(text, e);
            try {
                if (ALTERED_UTF8_RE.matcher(bytes).find()) bytes = restoreByteA0(bytes);
                if (FtfyData.CHARMAP_NAMES[e].startsWith("sloppy")) bytes = LOSSY_UTF8_RE.matcher(bytes).replaceAll("\u00ef\u00bf\u00bd");
                boolean variants = bytes.indexOf('\u00ed') >= 0 || bytes.indexOf('\u00c0') >= 0;
                return decodeUtf8(bytes, variants);
            } catch (NotUtf8 ignored) {
                // try the next encoding
            }
        }

        // Look for a-hat-euro sequences that remain, and fix them in isolation.
        if (MojibakeHeuristic.hasUtf8Run(text)) {
            String fixed = decodeInconsistentUtf8(text);
            if (!fixed.equals(text)) return fixed;
        }

        // Latin-1 meant as Windows-1252. (ftfy 6.1.1 checks for "windows-1252" in a list that only ever holds
        // "sloppy-windows-1252", so it always takes this branch when Latin-1 was possible.)
        if (latin1Possible) {
            String fixed = latin1AsWindows1252(text);
            if (fixed != null && !fixed.equals(text)) return fixed;
        }

        if (hasC1(text)) return fixC1Controls(text);
        return text;
    }

    static boolean isBad(String text) {
        return MojibakeHeuristic.isBad(text);
    }

    private static boolean isAscii(String text) {
        for (int i = 0; i < text.length(); i++) if (text.charAt(i) > 0x7F) return false;
        return true;
    }

    private static boolean possibleEncoding(String text, int enc) {
        boolean[] ok = POSSIBLE[enc];
        for (int i = 0; i < text.length(); i++) if (!ok[text.charAt(i)]) return false;
        return true;
    }

    /** Encodes text (known to be encodable) as a byte string held in a Latin-1 string. */
    private static String encode(String text, int enc) {
        byte[] table = ENCODE[enc];
        char[] out = new char[text.length()];
        for (int i = 0; i < out.length; i++) out[i] = (char) ((table[text.charAt(i)] & 0xFF) - 1);
        return new String(out);
    }

    /** {@code fixes.restore_byte_a0}. */
    private static String restoreByteA0(String bytes) {
        bytes = A_GRAVE_WORD_RE.matcher(bytes).replaceAll("\u00c3\u00a0 ");
        Matcher m = ALTERED_UTF8_RE.matcher(bytes);
        StringBuilder sb = new StringBuilder(bytes.length());
        while (m.find()) m.appendReplacement(sb, Matcher.quoteReplacement(m.group().replace(' ', '\u00a0')));
        m.appendTail(sb);
        return sb.toString();
    }

    /**
     * Strict UTF-8 decoding as Python does it, of a byte string held in a Latin-1 string. With {@code variants}
     * (ftfy's {@code utf-8-variants} codec) also CESU-8 surrogate pairs and Java's {@code C0 80} for U+0000.
     */
    static String decodeUtf8(String b, boolean variants) throws NotUtf8 {
        int n = b.length();
        StringBuilder sb = new StringBuilder(n);
        int i = 0;
        while (i < n) {
            int c0 = b.charAt(i);
            if (c0 < 0x80) {
                sb.append((char) c0);
                i++;
                continue;
            }
            if (variants) {
                if (c0 == 0xC0 && i + 1 < n && b.charAt(i + 1) == 0x80) {
                    sb.append('\u0000');
                    i += 2;
                    continue;
                }
                if (c0 == 0xED && i + 5 < n) {
                    int c1 = b.charAt(i + 1), c2 = b.charAt(i + 2), c3 = b.charAt(i + 3), c4 = b.charAt(i + 4), c5 = b.charAt(i + 5);
                    if (c1 >= 0xA0 && c1 <= 0xAF && cont(c2) && c3 == 0xED && c4 >= 0xB0 && c4 <= 0xBF && cont(c5)) {
                        int cp = ((c1 & 0x0F) << 16) + ((c2 & 0x3F) << 10) + ((c4 & 0x0F) << 6) + (c5 & 0x3F) + 0x10000;
                        sb.appendCodePoint(cp);
                        i += 6;
                        continue;
                    }
                }
            }
            int need, cp;
            if (c0 >= 0xC2 && c0 <= 0xDF) {
                need = 1;
                cp = c0 & 0x1F;
            } else if (c0 >= 0xE0 && c0 <= 0xEF) {
                need = 2;
                cp = c0 & 0x0F;
            } else if (c0 >= 0xF0 && c0 <= 0xF4) {
                need = 3;
                cp = c0 & 0x07;
            } else {
                throw NOT_UTF8;
            }
            if (i + need >= n) throw NOT_UTF8; // truncated sequence
            for (int k = 1; k <= need; k++) {
                int ck = b.charAt(i + k);
                if (!cont(ck)) throw NOT_UTF8;
                cp = (cp << 6) | (ck & 0x3F);
            }
            int min = need == 1 ? 0x80 : need == 2 ? 0x800 : 0x10000;
            if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) throw NOT_UTF8;
            sb.appendCodePoint(cp);
            i += need + 1;
        }
        return sb.toString();
    }

    private static boolean cont(int c) {
        return c >= 0x80 && c <= 0xBF;
    }

    /** {@code fixes.decode_inconsistent_utf8}. */
    private static String decodeInconsistentUtf8(String text) {
        StringBuilder sb = null;
        int last = 0;
        for (int i = 0; i < text.length(); ) {
            int end = MojibakeHeuristic.utf8RunAt(text, i);
            if (end < 0) {
                i++;
                continue;
            }
            String sub = text.substring(i, end);
            // Require the match to be shorter than the text, so that this doesn't recurse infinitely
            String rep = sub.length() < text.length() && isBad(sub) ? fixEncoding(sub) : sub;
            if (sb == null) sb = new StringBuilder(text.length());
            sb.append(text, last, i).append(rep);
            last = i = end;
        }
        if (sb == null) return text;
        return sb.append(text, last, text.length()).toString();
    }

    /** {@code text.encode("latin-1").decode("windows-1252")}, or null where Python would raise. */
    private static String latin1AsWindows1252(String text) {
        char[] out = new char[text.length()];
        for (int i = 0; i < out.length; i++) {
            char c = text.charAt(i);
            if (W1252_UNDEFINED[c]) return null; // (c <= 0xFF here)
            out[i] = SLOPPY_1252.charAt(c);
        }
        return new String(out);
    }

    private static boolean hasC1(String text) {
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c >= 0x80 && c <= 0x9F) return true;
        }
        return false;
    }

    // ---------------------------------------------------------------------------------------------------------
    // The character fixers

    /** {@code fixes.unescape_html}. */
    static String unescapeHtml(String text) {
        if (text.indexOf('&') < 0) return text;
        Matcher m = HTML_ENTITY_RE.matcher(text);
        StringBuilder sb = null;
        while (m.find()) {
            if (sb == null) sb = new StringBuilder(text.length());
            String t = m.group();
            String rep = HTML_ENTITIES.get(t);
            if (rep == null) {
                if (t.startsWith("&#")) {
                    String u = unescapeNumeric(t);
                    rep = u.indexOf(';') >= 0 ? t : u;
                } else {
                    rep = t;
                }
            }
            m.appendReplacement(sb, Matcher.quoteReplacement(rep));
        }
        if (sb == null) return text;
        m.appendTail(sb);
        return sb.toString();
    }

    /**
     * Python's {@code html.unescape} of a string {@code &#...;} that matched {@link #HTML_ENTITY_RE}: only a
     * reference whose digits run up to the ';' is fully replaced; otherwise a ';' remains in the result.
     */
    private static String unescapeNumeric(String t) {
        String body = t.substring(2, t.length() - 1);
        BigInteger num;
        if (!body.isEmpty() && allMatch(body, 0, "0123456789")) {
            num = new BigInteger(body);
        } else if (body.length() > 1 && (body.charAt(0) == 'x' || body.charAt(0) == 'X')
                && allMatch(body, 1, "0123456789abcdefABCDEF")) {
            num = new BigInteger(body.substring(1), 16);
        } else {
            return t; // not (fully) a character reference: the ';' stays
        }
        if (num.bitLength() > 31) return "\ufffd";
        int cp = num.intValue();
        if (cp == 0) return "\ufffd";
        if (cp == 0x0D) return "\r";
        if (cp >= 0x80 && cp <= 0x9F) return String.valueOf(SLOPPY_1252.charAt(cp));
        if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return "\ufffd";
        if ((cp >= 0x1 && cp <= 0x8) || cp == 0xB || (cp >= 0xE && cp <= 0x1F) || (cp >= 0x7F && cp <= 0x9F)
                || (cp >= 0xFDD0 && cp <= 0xFDEF) || (cp & 0xFFFE) == 0xFFFE) {
            return "";
        }
        return new String(Character.toChars(cp));
    }

    private static boolean allMatch(String s, int from, String chars) {
        for (int i = from; i < s.length(); i++) if (chars.indexOf(s.charAt(i)) < 0) return false;
        return true;
    }

    /** {@code fixes.fix_c1_controls}: C1 controls as Windows-1252 (sloppily: undefined bytes stay). */
    static String fixC1Controls(String text) {
        if (!hasC1(text)) return text;
        char[] out = text.toCharArray();
        for (int i = 0; i < out.length; i++) if (out[i] >= 0x80 && out[i] <= 0x9F) out[i] = SLOPPY_1252.charAt(out[i]);
        return new String(out);
    }

    static String fixLatinLigatures(String text) {
        StringBuilder sb = null;
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            String rep = (c >= 0x132 && c <= 0x1F3) || (c >= 0xFB00 && c <= 0xFB06) ? LIGATURES.get(c) : null;
            if (rep != null) {
                if (sb == null) sb = new StringBuilder(text.length() + 8).append(text, 0, i);
                sb.append(rep);
            } else if (sb != null) {
                sb.append(c);
            }
        }
        return sb == null ? text : sb.toString();
    }

    static String fixCharacterWidth(String text) {
        StringBuilder sb = null;
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            int k = WIDTH_KEY_INDEX[c];
            if (k != 0) {
                if (sb == null) sb = new StringBuilder(text.length()).append(text, 0, i);
                sb.append(WIDTH_VALUES.get(k - 1));
            } else if (sb != null) {
                sb.append(c);
            }
        }
        return sb == null ? text : sb.toString();
    }

    static String uncurlQuotes(String text) {
        char[] out = null;
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            char r = c == '\u02bc' || (c >= '\u2018' && c <= '\u201b') ? '\'' : c >= '\u201c' && c <= '\u201f' ? '"' : 0;
            if (r != 0) {
                if (out == null) out = text.toCharArray();
                out[i] = r;
            }
        }
        return out == null ? text : new String(out);
    }

    static String fixLineBreaks(String text) {
        boolean any = false;
        for (int i = 0; i < text.length() && !any; i++) {
            char c = text.charAt(i);
            any = c == '\r' || c == '\u2028' || c == '\u2029' || c == '\u0085';
        }
        if (!any) return text;
        return text.replace("\r\n", "\n").replace('\r', '\n').replace('\u2028', '\n').replace('\u2029', '\n')
                .replace('\u0085', '\n');
    }

    /** {@code fixes.fix_surrogates}: every unpaired surrogate becomes U+FFFD. */
    static String fixSurrogates(String text) {
        char[] out = null;
        int n = text.length();
        for (int i = 0; i < n; i++) {
            char c = text.charAt(i);
            if (Character.isHighSurrogate(c) && i + 1 < n && Character.isLowSurrogate(text.charAt(i + 1))) {
                i++;
            } else if (Character.isSurrogate(c)) {
                if (out == null) out = text.toCharArray();
                out[i] = '\ufffd';
            }
        }
        return out == null ? text : new String(out);
    }

    static String removeTerminalEscapes(String text) {
        if (text.indexOf('\u001b') < 0) return text;
        return ANSI_RE.matcher(text).replaceAll("");
    }

    /** {@code fixes.remove_control_chars} (chardata.CONTROL_CHARS). */
    static String removeControlChars(String text) {
        StringBuilder sb = null;
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (isRemovedControl(c)) {
                if (sb == null) sb = new StringBuilder(text.length()).append(text, 0, i);
            } else if (sb != null) {
                sb.append(c);
            }
        }
        return sb == null ? text : sb.toString();
    }

    private static boolean isRemovedControl(char c) {
        return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F || (c >= 0x206A && c <= 0x206F)
                || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
    }
}
