package io.mmdit4j.text.clip;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.mmdit4j.text.Encoding;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.zip.GZIPInputStream;

/**
 * An exact port of transformers' slow {@code CLIPTokenizer} (4.38) with ftfy (6.1.1) installed, called the way
 * FluxPipeline and StableDiffusion3Pipeline call it: {@code padding="max_length", max_length=77,
 * truncation=True}.
 *
 * <p>Pipeline for one prompt:
 * <ol>
 * <li>The added/special tokens (bos, eos, unk, pad, {@code additional_special_tokens} and the
 *     {@code added_tokens_decoder} of tokenizer_config.json) are split out first, leftmost-longest, as
 *     transformers' added-tokens trie does; each one becomes its own id. (With SD3 CLIP-G's pad token {@code "!"}
 *     every {@code '!'} in a prompt becomes id 0 this way.)</li>
 * <li>Every other chunk is cleaned: {@link TextFixer#fixText ftfy.fix_text}, then {@code whitespace_clean}
 *     (runs of Unicode whitespace to one space, strip), then lower case.</li>
 * <li>It is split with CLIP's pattern
 *     {@code <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+}
 *     (case-insensitive), and each piece goes through the byte-level BPE ({@link ByteLevelBpe}).</li>
 * <li>{@code [bos] + tokens[:maxLength-2] + [eos]}, padded on the right with the pad id; the mask is 1 on
 *     bos..eos. {@link Encoding#untruncatedIds()} holds {@code [bos] + all tokens + [eos]}.</li>
 * </ol>
 *
 * <p>Everything is computed exactly, also for very long prompts: ftfy's passes are linear and the BPE is
 * O(n log n) per word, so a 1 MB prompt (even one 1 MB word) takes about a second. The only bounds are
 * {@link TextFixer}'s cap on its fix-until-stable loops (see there), which normal prompts never reach.
 *
 * <p>Instances are immutable apart from the BPE cache, which is thread-safe: share one between threads.
 */
public final class ClipTokenizer {
    public static final int DEFAULT_MAX_LENGTH = 77;
    static final String STARTOFTEXT = "<|startoftext|>";
    static final String ENDOFTEXT = "<|endoftext|>";

    /** The regex module's {@code \s} (Unicode White_Space). */
    private static final String RX_SPACE = "\\x{9}-\\x{d}\\x{20}\\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}"
            + "\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}";
    /**
     * CLIP's pre-tokenisation pattern. Under the regex module's IGNORECASE, U+0345 (COMBINING GREEK
     * YPOGEGRAMMENI, whose case partner is the letter iota) matches none of the alternatives, so findall skips
     * it; Java would put it in the last class, so it is excluded there explicitly. (Checked against the regex
     * module for every code point Java 17 assigns.)
     */
    private static final Pattern PAT = Pattern.compile(
            "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^" + RX_SPACE
                    + "\\p{L}\\p{N}\\x{345}]+",
            Pattern.CASE_INSENSITIVE | Pattern.UNICODE_CASE);
    private static final Pattern WHITESPACE_RUN = Pattern.compile("[" + RX_SPACE + "]+");

    private final ByteLevelBpe bpe;
    private final long bosId;
    private final long eosId;
    private final long padId;
    private final int modelMaxLength;
    /** Added tokens (split out before cleanup) -> id, longest first for leftmost-longest matching. */
    private final Map<String, Long> addedTokens;
    private final String[] addedByLength;
    private final java.util.BitSet addedFirstChars = new java.util.BitSet();

    private ClipTokenizer(ByteLevelBpe bpe, long bosId, long eosId, long padId, int modelMaxLength, Map<String, Long> addedTokens) {
        this.bpe = bpe;
        this.bosId = bosId;
        this.eosId = eosId;
        this.padId = padId;
        this.modelMaxLength = modelMaxLength;
        this.addedTokens = Map.copyOf(addedTokens);
        this.addedByLength = addedTokens.keySet().stream().filter(s -> !s.isEmpty())
                .sorted(Comparator.comparingInt(String::length).reversed()).toArray(String[]::new);
        for (String t : addedByLength) addedFirstChars.set(t.charAt(0));
    }

    // ---------------------------------------------------------------------------------------------------------
    // Loading

    /**
     * Loads a transformers tokenizer folder: {@code vocab.json} and {@code merges.txt} (required), and
     * {@code tokenizer_config.json} / {@code special_tokens_map.json} (optional; the latter wins, as in
     * transformers) for the bos/eos/unk/pad tokens, {@code added_tokens_decoder} and {@code model_max_length}.
     *
     * @throws TokenizerFileException when a file is missing or malformed (the message names file and line)
     */
    public static ClipTokenizer fromFolder(Path dir) {
        Objects.requireNonNull(dir, "dir");
        Path vocabFile = dir.resolve("vocab.json");
        Path mergesFile = dir.resolve("merges.txt");
        Map<String, Integer> vocab = readVocab(vocabFile);
        List<String[]> merges = parseMerges(mergesFile, readUtf8(mergesFile), false);
        JsonNode config = readOptionalJson(dir.resolve("tokenizer_config.json"));
        JsonNode specialMap = readOptionalJson(dir.resolve("special_tokens_map.json"));

        Map<String, Long> added = new LinkedHashMap<>();
        JsonNode decoder = config.path("added_tokens_decoder");
        if (decoder.isObject()) {
            for (Map.Entry<String, JsonNode> e : decoder.properties()) {
                String content = tokenContent(e.getValue());
                long id;
                try {
                    id = Long.parseLong(e.getKey());
                } catch (NumberFormatException ex) {
                    throw new TokenizerFileException(dir.resolve("tokenizer_config.json"), 0,
                            "added_tokens_decoder key \"" + e.getKey() + "\" is not an integer id");
                }
                if (content == null) {
                    throw new TokenizerFileException(dir.resolve("tokenizer_config.json"), 0,
                            "added_tokens_decoder[" + e.getKey() + "] has no \"content\"");
                }
                added.put(content, id);
            }
        }
        String bos = special(specialMap, config, "bos_token", STARTOFTEXT);
        String eos = special(specialMap, config, "eos_token", ENDOFTEXT);
        String unk = special(specialMap, config, "unk_token", ENDOFTEXT);
        String pad = special(specialMap, config, "pad_token", ENDOFTEXT);
        List<String> specials = new ArrayList<>(List.of(bos, eos, unk, pad));
        JsonNode extra = specialMap.has("additional_special_tokens") ? specialMap.get("additional_special_tokens")
                : config.path("additional_special_tokens");
        if (extra.isArray()) for (JsonNode t : extra) if (tokenContent(t) != null) specials.add(tokenContent(t));

        long nextId = 0;
        for (int v : vocab.values()) nextId = Math.max(nextId, v + 1L);
        for (long v : added.values()) nextId = Math.max(nextId, v + 1);
        for (String s : specials) {
            if (added.containsKey(s)) continue;
            Integer v = vocab.get(s);
            added.put(s, v != null ? (long) v : nextId++);
        }
        int maxLength = DEFAULT_MAX_LENGTH;
        JsonNode mml = config.get("model_max_length");
        if (mml != null && mml.isNumber() && mml.asDouble() >= 2 && mml.asDouble() <= 1_000_000) maxLength = mml.asInt();

        ByteLevelBpe bpe = new ByteLevelBpe(vocab, merges, added.get(unk));
        return new ClipTokenizer(bpe, added.get(bos), added.get(eos), added.get(pad), maxLength, added);
    }

    /**
     * Loads openai/CLIP's {@code bpe_simple_vocab_16e6.txt.gz} and builds the vocabulary the way openai's
     * {@code SimpleTokenizer} does (the 256 byte characters, the same with {@code </w>}, one token per merge,
     * then {@code <|startoftext|>} and {@code <|endoftext|>}). The pad token is {@code <|endoftext|>}.
     *
     * @throws TokenizerFileException when the file is missing or malformed
     */
    public static ClipTokenizer fromBpeGz(Path bpeSimpleVocabGz) {
        Objects.requireNonNull(bpeSimpleVocabGz, "bpeSimpleVocabGz");
        byte[] raw;
        try (InputStream in = new GZIPInputStream(Files.newInputStream(bpeSimpleVocabGz))) {
            raw = in.readAllBytes();
        } catch (NoSuchFileException e) {
            throw new TokenizerFileException(bpeSimpleVocabGz, 0, "file not found", e);
        } catch (IOException e) {
            throw new TokenizerFileException(bpeSimpleVocabGz, 0, "cannot read gzip data: " + e.getMessage(), e);
        }
        String text = decodeUtf8(bpeSimpleVocabGz, raw);
        List<String[]> merges = parseMerges(bpeSimpleVocabGz, text, true);
        Map<String, Integer> vocab = new HashMap<>();
        List<String> tokens = new ArrayList<>();
        for (int b : ByteLevelBpe.BYTE_ORDER) tokens.add(String.valueOf(ByteLevelBpe.BYTE_TO_CHAR[b]));
        for (int b : ByteLevelBpe.BYTE_ORDER) tokens.add(ByteLevelBpe.BYTE_TO_CHAR[b] + ByteLevelBpe.END_OF_WORD);
        for (String[] m : merges) tokens.add(m[0] + m[1]);
        tokens.add(STARTOFTEXT);
        tokens.add(ENDOFTEXT);
        for (int i = 0; i < tokens.size(); i++) vocab.put(tokens.get(i), i); // a repeated token keeps its last id
        Map<String, Long> added = new LinkedHashMap<>();
        added.put(STARTOFTEXT, (long) vocab.get(STARTOFTEXT));
        added.put(ENDOFTEXT, (long) vocab.get(ENDOFTEXT));
        long eos = added.get(ENDOFTEXT);
        return new ClipTokenizer(new ByteLevelBpe(vocab, merges, eos), added.get(STARTOFTEXT), eos, eos,
                DEFAULT_MAX_LENGTH, added);
    }

    private static String readUtf8(Path file) {
        byte[] raw;
        try {
            raw = Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new TokenizerFileException(file, 0, "file not found", e);
        } catch (IOException e) {
            throw new TokenizerFileException(file, 0, "cannot read: " + e.getMessage(), e);
        }
        return decodeUtf8(file, raw);
    }

    private static String decodeUtf8(Path file, byte[] raw) {
        CharsetDecoder dec = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(raw);
        CharBuffer out = CharBuffer.allocate(raw.length + 1);
        CoderResult r = dec.decode(in, out, true);
        if (!r.isError()) r = dec.flush(out);
        if (r.isError()) {
            int line = 1;
            for (int i = 0; i < in.position(); i++) if (raw[i] == '\n') line++;
            throw new TokenizerFileException(file, line, "not valid UTF-8 (byte offset " + in.position() + ")");
        }
        out.flip();
        return out.toString();
    }

    /**
     * The merges as transformers / openai read them: the first line (the {@code #version} header) is skipped and
     * the next {@link ByteLevelBpe#MAX_MERGES} lines are used. Each must hold two symbols separated by whitespace.
     */
    private static List<String[]> parseMerges(Path file, String text, boolean openai) {
        int firstLine = 1;
        if (!openai) { // transformers: read().strip().split("\n")
            int a = 0, b = text.length();
            while (a < b && isPySpace(text.charAt(a))) if (text.charAt(a++) == '\n') firstLine++;
            while (b > a && isPySpace(text.charAt(b - 1))) b--;
            text = text.substring(a, b);
        }
        String[] lines = text.split("\n", -1);
        int end = Math.min(lines.length, 1 + ByteLevelBpe.MAX_MERGES);
        List<String[]> merges = new ArrayList<>(Math.max(0, end - 1));
        for (int i = 1; i < end; i++) {
            String[] parts = pySplit(lines[i]);
            if (parts.length == 0 && openai && i == lines.length - 1) break; // trailing newline of a short file
            if (parts.length != 2) {
                throw new TokenizerFileException(file, firstLine + i, "expected a merge of two whitespace-separated symbols, got \""
                        + abbreviate(lines[i]) + "\"");
            }
            merges.add(parts);
        }
        if (merges.isEmpty()) throw new TokenizerFileException(file, 0, "no merges after the header line");
        return merges;
    }

    /** Python's {@code str.split()} with no argument. */
    private static String[] pySplit(String s) {
        List<String> out = new ArrayList<>(2);
        int i = 0, n = s.length();
        while (i < n) {
            while (i < n && isPySpace(s.charAt(i))) i++;
            int start = i;
            while (i < n && !isPySpace(s.charAt(i))) i++;
            if (i > start) out.add(s.substring(start, i));
        }
        return out.toArray(new String[0]);
    }

    private static String abbreviate(String s) {
        return s.length() <= 80 ? s : s.substring(0, 77) + "...";
    }

    private static Map<String, Integer> readVocab(Path file) {
        String text = readUtf8(file);
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(text);
        } catch (JsonProcessingException e) {
            JsonLocation loc = e.getLocation();
            throw new TokenizerFileException(file, loc != null ? Math.max(0, loc.getLineNr()) : 0,
                    "malformed JSON: " + e.getOriginalMessage(), e);
        }
        if (root == null || !root.isObject()) throw new TokenizerFileException(file, 0, "expected a JSON object of token -> id");
        Map<String, Integer> vocab = new HashMap<>(root.size() * 2);
        for (Map.Entry<String, JsonNode> e : root.properties()) {
            JsonNode v = e.getValue();
            if (!v.isIntegralNumber() || !v.canConvertToInt() || v.asInt() < 0) {
                throw new TokenizerFileException(file, 0, "token \"" + abbreviate(e.getKey()) + "\" has id " + v + ", expected a non-negative integer");
            }
            vocab.put(e.getKey(), v.asInt());
        }
        if (vocab.isEmpty()) throw new TokenizerFileException(file, 0, "empty vocabulary");
        return vocab;
    }

    private static JsonNode readOptionalJson(Path file) {
        if (!Files.exists(file)) return new ObjectMapper().createObjectNode();
        try {
            JsonNode n = new ObjectMapper().readTree(readUtf8(file));
            if (n == null || !n.isObject()) throw new TokenizerFileException(file, 0, "expected a JSON object");
            return n;
        } catch (JsonProcessingException e) {
            JsonLocation loc = e.getLocation();
            throw new TokenizerFileException(file, loc != null ? Math.max(0, loc.getLineNr()) : 0,
                    "malformed JSON: " + e.getOriginalMessage(), e);
        }
    }

    /** special_tokens_map.json wins over tokenizer_config.json (transformers' from_pretrained). */
    private static String special(JsonNode specialMap, JsonNode config, String key, String dflt) {
        String s = tokenContent(specialMap.get(key));
        if (s == null) s = tokenContent(config.get(key));
        return s != null ? s : dflt;
    }

    /** A token written as a string or as an AddedToken object {@code {"content": ...}}. */
    private static String tokenContent(JsonNode n) {
        if (n == null || n.isNull()) return null;
        if (n.isTextual()) return n.asText();
        if (n.isObject() && n.path("content").isTextual()) return n.get("content").asText();
        return null;
    }

    // ---------------------------------------------------------------------------------------------------------
    // Tokenising

    public long bosId() {
        return bosId;
    }

    public long eosId() {
        return eosId;
    }

    public long padId() {
        return padId;
    }

    /** {@code model_max_length} (77 for CLIP). */
    public int maxLength() {
        return modelMaxLength;
    }

    /** {@link #encode(String, int)} with {@link #maxLength()}. */
    public Encoding encode(String prompt) {
        return encode(prompt, modelMaxLength);
    }

    /**
     * {@code tokenizer(prompt, padding="max_length", max_length=maxLength, truncation=True)}: bos, the first
     * {@code maxLength - 2} tokens, eos, then pad ids; mask 1 on bos..eos.
     */
    public Encoding encode(String prompt, int maxLength) {
        Objects.requireNonNull(prompt, "prompt");
        if (maxLength < 2) throw new IllegalArgumentException("maxLength must be at least 2 (bos and eos), got " + maxLength);
        List<Long> ids = new ArrayList<>();
        tokenize(prompt, null, ids);
        long[] untruncated = new long[ids.size() + 2];
        untruncated[0] = bosId;
        for (int i = 0; i < ids.size(); i++) untruncated[i + 1] = ids.get(i);
        untruncated[untruncated.length - 1] = eosId;
        int kept = Math.min(ids.size(), maxLength - 2);
        long[] out = new long[maxLength];
        long[] mask = new long[maxLength];
        Arrays.fill(out, padId);
        out[0] = bosId;
        for (int i = 0; i < kept; i++) out[i + 1] = ids.get(i);
        out[kept + 1] = eosId;
        Arrays.fill(mask, 0, kept + 2, 1L);
        return new Encoding(out, mask, untruncated);
    }

    /** The BPE tokens of a prompt without bos/eos and without truncation (transformers' {@code tokenize}). */
    public List<String> tokens(String prompt) {
        Objects.requireNonNull(prompt, "prompt");
        List<String> out = new ArrayList<>();
        tokenize(prompt, out, null);
        return out;
    }

    private void tokenize(String text, List<String> tokensOut, List<Long> idsOut) {
        int n = text.length();
        int chunkStart = 0;
        int i = 0;
        while (i < n) {
            String hit = null;
            if (addedFirstChars.get(text.charAt(i))) for (String t : addedByLength) {
                if (text.startsWith(t, i)) {
                    hit = t;
                    break;
                }
            }
            if (hit == null) {
                i++;
                continue;
            }
            if (i > chunkStart) tokenizeChunk(text.substring(chunkStart, i), tokensOut, idsOut);
            if (tokensOut != null) tokensOut.add(hit);
            if (idsOut != null) idsOut.add(addedTokens.get(hit));
            i += hit.length();
            chunkStart = i;
        }
        if (chunkStart < n) tokenizeChunk(text.substring(chunkStart), tokensOut, idsOut);
    }

    /** {@code CLIPTokenizer._tokenize}. */
    private void tokenizeChunk(String chunk, List<String> tokensOut, List<Long> idsOut) {
        String text = pyLower(whitespaceClean(TextFixer.fixText(chunk)));
        Matcher m = PAT.matcher(text);
        while (m.find()) {
            int[] symbols = bpe.bpe(ByteLevelBpe.byteEncode(m.group()));
            for (int s : symbols) {
                if (tokensOut != null) tokensOut.add(bpe.symbol(s));
                if (idsOut != null) idsOut.add(bpe.tokenId(s));
            }
        }
    }

    /** {@code whitespace_clean}: {@code regex.sub(r"\s+", " ", text).strip()}. */
    static String whitespaceClean(String text) {
        String s = WHITESPACE_RUN.matcher(text).replaceAll(" ");
        int a = 0, b = s.length();
        while (a < b && isPySpace(s.charAt(a))) a++;
        while (b > a && isPySpace(s.charAt(b - 1))) b--;
        return s.substring(a, b);
    }

    /**
     * Python's {@code str.lower()}: full lower-case mapping (U+0130 becomes "i\u0307") and Python's Final_Sigma
     * rule for U+03A3 (cased letter, case-ignorables, sigma, and no case-ignorables-then-cased after it), which
     * differs from Java's word-boundary based rule. Character data is Java's (Unicode 13 on Java 17), so letters
     * first encoded in Unicode 14 may lower-case differently than in Python 3.11.
     */
    static String pyLower(String s) {
        if (s.indexOf('\u03a3') < 0) return s.toLowerCase(Locale.ROOT);
        StringBuilder sb = new StringBuilder(s.length() + 4);
        for (int i = 0; i < s.length(); ) {
            int cp = s.codePointAt(i);
            if (cp == 0x3A3) {
                sb.append(finalSigma(s, i) ? '\u03c2' : '\u03c3');
            } else if (cp == 0x130) {
                sb.append("i\u0307");
            } else {
                sb.appendCodePoint(Character.toLowerCase(cp));
            }
            i += Character.charCount(cp);
        }
        return sb.toString();
    }

    /** CPython's {@code handle_capital_sigma}. */
    private static boolean finalSigma(String s, int i) {
        int j = i;
        int c = 0;
        boolean found = false;
        while (j > 0) {
            c = s.codePointBefore(j);
            j -= Character.charCount(c);
            if (!isCaseIgnorable(c)) {
                found = true;
                break;
            }
        }
        if (!found || !isCased(c)) return false;
        j = i + 1;
        while (j < s.length()) {
            c = s.codePointAt(j);
            if (!isCaseIgnorable(c)) return !isCased(c);
            j += Character.charCount(c);
        }
        return true;
    }

    private static boolean isCased(int c) {
        return Character.isLowerCase(c) || Character.isUpperCase(c) || Character.isTitleCase(c);
    }

    /** Unicode's Case_Ignorable: Mn, Me, Cf, Lm, Sk and the Word_Break MidLetter / MidNumLet / Single_Quote characters. */
    private static boolean isCaseIgnorable(int c) {
        switch (Character.getType(c)) {
            case Character.NON_SPACING_MARK:
            case Character.ENCLOSING_MARK:
            case Character.FORMAT:
            case Character.MODIFIER_LETTER:
            case Character.MODIFIER_SYMBOL:
                return true;
            default:
                return c == 0x27 || c == 0x2E || c == 0x3A || c == 0xB7 || c == 0x387 || c == 0x55F || c == 0x5F4
                        || c == 0x2018 || c == 0x2019 || c == 0x2024 || c == 0x2027 || c == 0xFE13 || c == 0xFE52
                        || c == 0xFE55 || c == 0xFF07 || c == 0xFF0E || c == 0xFF1A;
        }
    }

    /** Python's {@code str.isspace()} for one char. */
    static boolean isPySpace(char c) {
        return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680
                || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
    }
}
