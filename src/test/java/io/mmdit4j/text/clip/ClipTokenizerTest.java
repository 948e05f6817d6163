package io.mmdit4j.text.clip;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.mmdit4j.GoldenData;
import io.mmdit4j.text.Encoding;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.zip.GZIPOutputStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link ClipTokenizer} (transformers' slow CLIPTokenizer with ftfy 6.1.1) against the golden token ids of
 * {@code shared/golden/tokenizers/token_ids.json}, plus its ftfy port, its file errors and its bounds.
 * The vocabulary files are read in place from {@code -Dmmdit.tokenizers} (default {@code ../shared/tokenizers}).
 */
class ClipTokenizerTest {
    static final Path TOKENIZERS = Path.of(System.getProperty("mmdit.tokenizers", "../shared/tokenizers"));
    static final Path CLIP_DIR = TOKENIZERS.resolve("clip");
    static ClipTokenizer folder;
    static JsonNode golden;

    @BeforeAll
    static void load() throws IOException {
        folder = ClipTokenizer.fromFolder(CLIP_DIR);
        golden = new ObjectMapper().readTree(GoldenData.root().resolve("tokenizers/token_ids.json").toFile());
    }

    static long[] longs(JsonNode array) {
        long[] out = new long[array.size()];
        for (int i = 0; i < out.length; i++) out[i] = array.get(i).asLong();
        return out;
    }

    static List<String> strings(JsonNode array) {
        List<String> out = new ArrayList<>();
        array.forEach(n -> out.add(n.asText()));
        return out;
    }

    /** Compares one tokenizer with every golden prompt; returns the mismatch descriptions. */
    static List<String> goldenMismatches(ClipTokenizer tok, boolean checkTokens) {
        List<String> bad = new ArrayList<>();
        for (JsonNode p : golden.get("prompts")) {
            String prompt = p.get("prompt").asText();
            JsonNode clip = p.get("clip");
            Encoding e = tok.encode(prompt);
            long[] ids = longs(clip.get("input_ids"));
            long[] mask = longs(clip.get("attention_mask"));
            long[] untruncated = longs(clip.get("ids_untruncated"));
            String where = "prompt #" + p.get("index").asInt() + " " + new ObjectMapper().valueToTree(prompt);
            if (!Arrays.equals(ids, e.ids())) {
                bad.add(where + "\n  input_ids expected " + Arrays.toString(ids) + "\n  input_ids actual   " + Arrays.toString(e.ids()));
            }
            if (!Arrays.equals(mask, e.attentionMask())) {
                bad.add(where + "\n  mask expected " + Arrays.toString(mask) + "\n  mask actual   " + Arrays.toString(e.attentionMask()));
            }
            if (!Arrays.equals(untruncated, e.untruncatedIds())) {
                bad.add(where + "\n  ids_untruncated expected " + Arrays.toString(untruncated)
                        + "\n  ids_untruncated actual   " + Arrays.toString(e.untruncatedIds()));
            }
            if (checkTokens) {
                List<String> tokens = strings(clip.get("tokens_untruncated"));
                List<String> actual = tok.tokens(prompt);
                if (!tokens.equals(actual)) bad.add(where + "\n  tokens expected " + tokens + "\n  tokens actual   " + actual);
            }
        }
        return bad;
    }

    @Test
    void allGoldenPromptsMatchIdsMaskAndUntruncatedIds() {
        List<String> bad = goldenMismatches(folder, true);
        int total = golden.get("prompts").size();
        long badPrompts = bad.stream().map(s -> s.substring(0, s.indexOf('\n'))).distinct().count();
        System.out.println("CLIP golden prompts: " + (total - badPrompts) + "/" + total + " exact (" + bad.size() + " mismatches)");
        bad.forEach(System.out::println);
        assertEquals(42, total);
        assertTrue(bad.isEmpty(), bad.size() + " mismatches:\n" + String.join("\n", bad));
    }

    @Test
    void openaiGzVocabularyGivesTheSameIdsAsTheFolder() {
        ClipTokenizer gz = ClipTokenizer.fromBpeGz(CLIP_DIR.resolve("bpe_simple_vocab_16e6.txt.gz"));
        assertEquals(49406, gz.bosId());
        assertEquals(49407, gz.eosId());
        assertEquals(49407, gz.padId());
        List<String> bad = goldenMismatches(gz, true);
        for (JsonNode p : golden.get("prompts")) {
            String prompt = p.get("prompt").asText();
            if (!Arrays.equals(folder.encode(prompt).untruncatedIds(), gz.encode(prompt).untruncatedIds())) {
                bad.add("gz differs from folder for " + prompt);
            }
        }
        System.out.println("CLIP golden prompts via bpe_simple_vocab_16e6.txt.gz: " + bad.size() + " mismatches");
        assertTrue(bad.isEmpty(), String.join("\n", bad));
    }

    @Test
    void specialIdsAndLengths() {
        assertEquals(49406, folder.bosId());
        assertEquals(49407, folder.eosId());
        assertEquals(49407, folder.padId());
        assertEquals(77, folder.maxLength());
        Encoding e = folder.encode("a photo of a cat", 10);
        assertArrayEquals(new long[] {49406, 320, 1125, 539, 320, 2368, 49407, 49407, 49407, 49407}, e.ids());
        assertArrayEquals(new long[] {1, 1, 1, 1, 1, 1, 1, 0, 0, 0}, e.attentionMask());
        Encoding cut = folder.encode("a photo of a cat", 4);
        assertArrayEquals(new long[] {49406, 320, 1125, 49407}, cut.ids());
        assertArrayEquals(new long[] {1, 1, 1, 1}, cut.attentionMask());
        assertTrue(cut.truncated());
        Encoding empty = folder.encode("");
        assertArrayEquals(new long[] {49406, 49407}, Arrays.copyOf(empty.ids(), 2));
        assertEquals(2, empty.length());
        assertThrows(IllegalArgumentException.class, () -> folder.encode("x", 1));
        assertThrows(NullPointerException.class, () -> folder.encode(null));
    }

    /** Expected ids computed with transformers' CLIPTokenizer algorithm and ftfy 6.1.1 in Python. */
    @Test
    void moreCleanupCasesMatchPython() {
        String[][] cases = {
            {"&lt;|endoftext|&gt; and &lt;b&gt;", "49406, 49407, 537, 283, 321, 285, 49407"},
            {"A <|ENDOFTEXT|> b <|endoftext|><|startoftext|>", "49406, 320, 49407, 321, 49407, 49406, 49407"},
            {"it'S \u017ftra\u00dfe '\u017ft DON'T", "49406, 585, 568, 129, 123, 752, 127, 253, 324, 6, 129, 379, 339, 847, 713, 49407"},
            {"\u039f\u0394\u039f\u03a3. \u0391\u03a3' \u03a3 \u03a3\u038a\u03a3\u03a5\u03a6\u039f\u03a3", "49406, 138, 123, 138, 112, 138, 123, 139, 480, 269, 138, 109, 139, 480, 262, 139, 481, 139, 225, 138, 107, 139, 225, 139, 227, 139, 228, 138, 123, 139, 480, 49407"},
            {"voil\u00c3 le travail, \u00c3 la carte", "49406, 947, 543, 21259, 579, 752, 21189, 267, 21259, 1210, 44949, 49407"},
            {"\u00d0\u00bf\u00d1\u20ac\u00d0\u00b8\u00d0\u00b2\u00d0\u00b5\u00d1\u201a \u00d0\u00bc\u00d0\u00b8\u00d1\u20ac", "49406, 26302, 16370, 29503, 110, 22176, 141, 480, 38018, 16701, 141, 478, 49407"},
            {"the Mona Lisa doesn\u00e2\u20ac\u2122t have eyebrows", "49406, 518, 19143, 7424, 2503, 713, 720, 19923, 49407"},
            {"L&AMP;ATILDE;PEZ &eacute;t&eacute; &#x1F600;", "49406, 75, 19339, 10482, 3459, 39694, 7334, 49407"},
            {"x\u0345y \u0130stanbul", "49406, 343, 344, 328, 16384, 11231, 49407"},
            {"caf\u00e9\u2028menu\r\nline", "49406, 15304, 6225, 1148, 49407"},
            {"\u001b[31mred\u001b[0m text\ufeff", "49406, 736, 4160, 49407"},
            {"tab\tsep\u3000ideographic\u00a0nbsp", "49406, 14724, 10434, 1909, 78, 4245, 6459, 4393, 49407"},
            {"\ufb00 \ufb03 \u0133 \uff28\uff45\uff4c\uff4c\uff4f \uff76\uff80\uff76\uff85", "49406, 1304, 1021, 328, 72, 329, 3306, 37367, 34941, 37367, 2429, 488, 49407"},
            {"1,234.5e-6 \u00bd \u00b2 \u2116", "49406, 272, 267, 273, 274, 275, 269, 276, 324, 268, 277, 33613, 41175, 8604, 500, 49407"},
        };
        List<String> bad = new ArrayList<>();
        for (String[] c : cases) {
            long[] expected = Arrays.stream(c[1].split(", ")).mapToLong(Long::parseLong).toArray();
            long[] actual = folder.encode(c[0]).untruncatedIds();
            if (!Arrays.equals(expected, actual)) {
                bad.add(new ObjectMapper().valueToTree(c[0]) + "\n  expected " + Arrays.toString(expected) + "\n  actual   " + Arrays.toString(actual));
            }
        }
        assertTrue(bad.isEmpty(), String.join("\n", bad));
    }

    /** ftfy 6.1.1's fix_text on documentation examples and mojibake of each kind (expected values from Python). */
    @Test
    void ftfyFixTextMatchesPython() {
        String[][] cases = {
            {"\u00e2\u0153\u201d No problems", "\u2714 No problems"},
            {"&macr;\\_(\u00e3\u0083\u0084)_/&macr;", "\u00af\\_(\u30c4)_/\u00af"},
            {"Broken text&hellip; it&#x2019;s \ufb02ubberi\ufb01c!", "Broken text\u2026 it's flubberific!"},
            {"s\u00c3\u00b3", "s\u00f3"},
            {"voil\u00c3 le travail", "voil\u00e0 le travail"},
            {"L&AMP;AMP;ATILDE;&AMP;AMP;SUP3;PEZ", "L\u00f3PEZ"},
            {"\uff2c\uff2f\uff35\uff24\u3000\uff2e\uff2f\uff29\uff33\uff25\uff33", "LOUD NOISES"},
            {"<em>HTML entities &lt;3</em>", "<em>HTML entities &lt;3</em>"},
            {"HTML entities &lt;3", "HTML entities <3"},
            {"u\u00cc\u02c6nicode", "\u00fcnicode"},
            {"This text is sad .\u00e2\u0081\u201d.", "This text is sad .\u2054."},
            {"\u00e2\u20ac\u0153 like this \u00e2\u20ac\ufffd", "\" like this \ufffd"},
            {"\u001b[36;44mI'm blue, da ba dee\u001b[0m", "I'm blue, da ba dee"},
            {"\u00c3\u00a2\u00e2\u201a\u00ac\u00c5\u201cmismatched quotes\u00e2\u20ac\u009d", "\"mismatched quotes\""},
            {"P&EACUTE;REZ", "P\u00c9REZ"},
            {"BUNDESSTRA&SZLIG;E", "BUNDESSTRASSE"},
            {"&ntilde; &Ntilde; &NTILDE; &nTILDE;", "\u00f1 \u00d1 \u00d1 &nTILDE;"},
            {"&#59; &#128; &#0; &#12ab; &#x1F600;", "&#59; \u20ac \ufffd &#12ab; \ud83d\ude00"},
            {"line one\r\nline two\u2028three\u0085four", "line one\nline two\nthree\u2026four"},
            {"\u0100\u00ad  zero\u200bwidth\ufeff", "\u0100\u00ad  zero\u200bwidth"},
            {"\u0133sselmeer \u01c6ungla", "ijsselmeer d\u017eungla"},
            {"cafe\u0301", "caf\u00e9"},
            {"a\ud800b", "a\ufffdb"},
            {"\u00c3\u00banico\u00c2 a\u00c3\u00b1o", "\u00fanico\u00a0a\u00f1o"},
            {"\u00d0\u00bf\u00d1\u20ac\u00d0\u00b8\u00d0\u00b2\u00d0\u00b5\u00d1\u201a", "\u043f\u0440\u0438\u0432\u0435\u0442"},
            {"\u00c3\u00a0 la carte", "\u00e0 la carte"},
            {"\u00a0\u00c3 la carte", "\u00a0\u00c3 la carte"},
            {"\u00c3\u0192", "\u00c3"},
            {"the Mona Lisa doesn\u00e2\u20ac\u2122t have eyebrows.", "the Mona Lisa doesn't have eyebrows."},
            {"\u00ef\u00bb\u00bfhello", "hello"},
            {"Arabic: \u00d8\u00a7\u00d9\u201e\u00d8\u00b9\u00d8\u00b1\u00d8\u00a8\u00d9\u0160\u00d8\u00a9", "Arabic: \u0627\u0644\u0639\u0631\u0628\u064a\u0629"},
            {"\u00c3\u00a9\ud83d\ude00", "\u00e9\ud83d\ude00"},
            {"\u00ed\u00a0\u00bd\u00ed\u00b8\u0080", "\ud83d\ude00"},
            {"x\u0080y\u009dz", "x\u20acy\u009dz"},
            {"<b>&amp;</b>\n&amp;", "<b>&amp;</b>\n&amp;"},
            {"&amp;\n<b>&amp;</b>", "&\n<b>&amp;</b>"},
            {"\u00c3\u0083\u00c2\u00a9", "\u00e9"},
            {"\u00c3\u0192 \u00c3\u00a9 \u00c3", "\u00e0 \u00e9 \u00c3"},
            {"\u00d0\u009f\u00d1\u0080\u00d0\u00b8\u00d0\u00b2\u00d0\u00b5\u00d1\u0082 \u00d0\u00bc\u00d0\u00b8\u00d1\u0080", "\u041f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440"},
            {"\u00e2\u0080\u009cquoted text", "\"quoted text"},
        };
        List<String> bad = new ArrayList<>();
        for (String[] c : cases) {
            String actual = TextFixer.fixText(c[0]);
            if (!c[1].equals(actual)) {
                ObjectMapper om = new ObjectMapper();
                bad.add(om.valueToTree(c[0]) + "\n  expected " + om.valueToTree(c[1]) + "\n  actual   " + om.valueToTree(actual));
            }
        }
        assertTrue(bad.isEmpty(), String.join("\n", bad));
    }

    @Test
    void padBangTokenizerPadsWithIdZeroAndSplitsBangs(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("vocab.json"), Files.readString(CLIP_DIR.resolve("vocab.json")));
        Files.writeString(dir.resolve("merges.txt"), Files.readString(CLIP_DIR.resolve("merges.txt")));
        Files.writeString(dir.resolve("tokenizer_config.json"), Files.readString(CLIP_DIR.resolve("tokenizer_config.json")));
        Files.writeString(dir.resolve("special_tokens_map.json"), "{\n"
                + "  \"bos_token\": {\"content\": \"<|startoftext|>\", \"lstrip\": false, \"normalized\": true, \"rstrip\": false, \"single_word\": false},\n"
                + "  \"eos_token\": {\"content\": \"<|endoftext|>\", \"lstrip\": false, \"normalized\": false, \"rstrip\": false, \"single_word\": false},\n"
                + "  \"pad_token\": \"!\",\n"
                + "  \"unk_token\": {\"content\": \"<|endoftext|>\", \"lstrip\": false, \"normalized\": false, \"rstrip\": false, \"single_word\": false}\n"
                + "}\n");
        ClipTokenizer bang = ClipTokenizer.fromFolder(dir);
        assertEquals(0, bang.padId());
        assertEquals(49406, bang.bosId());
        assertEquals(49407, bang.eosId());
        Encoding e = bang.encode("a photo of a cat");
        long[] expected = new long[77];
        System.arraycopy(new long[] {49406, 320, 1125, 539, 320, 2368, 49407}, 0, expected, 0, 7);
        assertArrayEquals(expected, e.ids());
        assertEquals(7, e.length());
        // "!" is a special token of this tokenizer: every '!' is split out as id 0 before BPE
        long wow = folder.encode("wow").untruncatedIds()[1];
        assertArrayEquals(new long[] {49406, wow, 0, 0, 49407}, bang.encode("wow!!").untruncatedIds());
        assertEquals(List.of("wow</w>", "!", "!"), bang.tokens("wow!!"));
        assertEquals(List.of("wow</w>", "!!</w>"), folder.tokens("wow!!"));
    }

    // ---------------------------------------------------------------------------------------------------------
    // Bad input

    private static void writeMinimal(Path dir, String vocab, String merges) throws IOException {
        Files.writeString(dir.resolve("vocab.json"), vocab);
        Files.writeString(dir.resolve("merges.txt"), merges);
    }

    @Test
    void missingFilesNameTheFile(@TempDir Path dir) throws IOException {
        TokenizerFileException e = assertThrows(TokenizerFileException.class, () -> ClipTokenizer.fromFolder(dir.resolve("nope")));
        assertEquals("vocab.json", e.file().getFileName().toString());
        assertTrue(e.getMessage().contains("not found"), e.getMessage());
        Files.writeString(dir.resolve("vocab.json"), "{\"a\": 0}");
        e = assertThrows(TokenizerFileException.class, () -> ClipTokenizer.fromFolder(dir));
        assertEquals("merges.txt", e.file().getFileName().toString());
        e = assertThrows(TokenizerFileException.class, () -> ClipTokenizer.fromBpeGz(dir.resolve("missing.txt.gz")));
        assertTrue(e.getMessage().contains("missing.txt.gz"), e.getMessage());
    }

    @Test
    void malformedVocabJsonNamesFileAndLine(@TempDir Path dir) throws IOException {
        writeMinimal(dir, "{\n  \"a\": 0,\n  \"b\": ,\n}", "#version: 0.2\na b\n");
        TokenizerFileException e = assertThrows(TokenizerFileException.class, () -> ClipTokenizer.fromFolder(dir));
        assertEquals(3, e.line(), e.getMessage());
        assertTrue(e.getMessage().startsWith(dir.resolve("vocab.json") + ":3: malformed JSON"), e.getMessage());

        writeMinimal(dir, "{\"a\": \"zero\"}", "#version: 0.2\na b\n");
        e = assertThrows(TokenizerFileException.class, () -> ClipTokenizer.fromFolder(dir));
        assertTrue(e.getMessage().contains("\"a\"") && e.getMessage().contains("non-negative integer"), e.getMessage());

        writeMinimal(dir, "[1, 2]", "#version: 0.2\na b\n");
        e = assertThrows(TokenizerFileException.class, () -> ClipTokenizer.fromFolder(dir));
        assertTrue(e.getMessage().contains("JSON object"), e.getMessage());

        writeMinimal(dir, "", "#version: 0.2\na b\n");
        assertThrows(TokenizerFileException.class, () -> ClipTokenizer.fromFolder(dir));
    }

    @Test
    void malformedMergesNameFileAndLine(@TempDir Path dir) throws IOException {
        writeMinimal(dir, "{\"a\": 0, \"b\": 1}", "#version: 0.2\na b\nc\nd e\n");
        TokenizerFileException e = assertThrows(TokenizerFileException.class, () -> ClipTokenizer.fromFolder(dir));
        assertEquals(3, e.line(), e.getMessage());
        assertEquals("merges.txt", e.file().getFileName().toString());

        writeMinimal(dir, "{\"a\": 0}", "#version: 0.2\na b c\n");
        e = assertThrows(TokenizerFileException.class, () -> ClipTokenizer.fromFolder(dir));
        assertEquals(2, e.line(), e.getMessage());

        writeMinimal(dir, "{\"a\": 0}", "#version: 0.2\n");
        e = assertThrows(TokenizerFileException.class, () -> ClipTokenizer.fromFolder(dir));
        assertTrue(e.getMessage().contains("no merges"), e.getMessage());

        Files.writeString(dir.resolve("vocab.json"), "{\"a\": 0}");
        Files.write(dir.resolve("merges.txt"), new byte[] {'#', 'v', '\n', 'a', ' ', 'b', '\n', 'c', ' ', (byte) 0xC3, '\n'});
        e = assertThrows(TokenizerFileException.class, () -> ClipTokenizer.fromFolder(dir));
        assertEquals(3, e.line(), e.getMessage());
        assertTrue(e.getMessage().contains("UTF-8"), e.getMessage());
    }

    @Test
    void malformedOptionalConfigAndGzip(@TempDir Path dir) throws IOException {
        writeMinimal(dir, "{\"a\": 0, \"b\": 1}", "#version: 0.2\na b\n");
        Files.writeString(dir.resolve("tokenizer_config.json"), "{ \"model_max_length\": 77,");
        TokenizerFileException e = assertThrows(TokenizerFileException.class, () -> ClipTokenizer.fromFolder(dir));
        assertEquals("tokenizer_config.json", e.file().getFileName().toString());

        Path notGzip = dir.resolve("plain.txt.gz");
        Files.writeString(notGzip, "#version: 0.2\na b\n");
        e = assertThrows(TokenizerFileException.class, () -> ClipTokenizer.fromBpeGz(notGzip));
        assertTrue(e.getMessage().contains("gzip"), e.getMessage());

        Path badLine = dir.resolve("bad.txt.gz");
        try (OutputStream out = new GZIPOutputStream(Files.newOutputStream(badLine))) {
            out.write("#version: 0.2\na b\nlonely\n".getBytes(StandardCharsets.UTF_8));
        }
        e = assertThrows(TokenizerFileException.class, () -> ClipTokenizer.fromBpeGz(badLine));
        assertEquals(3, e.line(), e.getMessage());
    }

    @Test
    void loneSurrogatesBecomeReplacementCharacters() {
        String[] prompts = {"a\uD800b cat", "\uDC00", "cat x\uD83D", "\uDE00\uD83D dog", "<|endoftext|>\uD800"};
        for (String p : prompts) {
            String replaced = TextFixer.fixSurrogates(p);
            assertFalse(replaced.chars().anyMatch(c -> Character.isSurrogate((char) c)), replaced);
            assertEquals(folder.tokens(replaced), folder.tokens(p), p);
            assertArrayEquals(folder.encode(replaced).ids(), folder.encode(p).ids());
        }
        assertEquals(List.of("a</w>", "\u00ef\u00bf\u00bd</w>", "b</w>", "cat</w>"), folder.tokens("a\uD800b cat"));
        // a proper pair is one character (an emoji), not two replacement characters
        assertEquals(folder.tokens("\uD83D\uDE00"), folder.tokens("\uD83D\uDE00"));
        assertEquals(List.of("\u00f0\u0141\u013a\u0122</w>"), folder.tokens("\uD83D\uDE00"));
    }

    // ---------------------------------------------------------------------------------------------------------
    // Size and speed

    private static String randomText(Random r, int chars, boolean spaces) {
        String[] words = {"a", "photo", "of", "cat", "café", "naïve", "日本語", "Ελληνικά", "don't", "42", "3.14", "!!!", "—", "😀",
                "masterpiece", "(best quality:1.2)", "tokenizer", "mojibake", "cafÃ©", "&amp;", "“quoted”"};
        StringBuilder sb = new StringBuilder(chars + 32);
        while (sb.length() < chars) {
            if (spaces) {
                sb.append(words[r.nextInt(words.length)]).append(r.nextInt(8) == 0 ? ", " : " ");
            } else {
                sb.append((char) ('a' + r.nextInt(26)));
            }
        }
        sb.setLength(chars);
        if (Character.isHighSurrogate(sb.charAt(chars - 1))) sb.setLength(chars - 1);
        return sb.toString();
    }

    private static long timeMillis(Runnable r) {
        long t0 = System.nanoTime();
        r.run();
        return (System.nanoTime() - t0) / 1_000_000;
    }

    @Test
    void oneMegabytePromptsFinishQuickly() {
        Random r = new Random(1);
        folder.encode(randomText(r, 20_000, true)); // warm up
        String[] prompts = {
                randomText(r, 1 << 20, true),      // ~200k words
                randomText(r, 1 << 20, false),     // one 1 MB word of random letters
                "a".repeat(1 << 20),               // one 1 MB word of a single letter
                "!?".repeat(1 << 19),              // one 1 MB run of punctuation
                "&amp;".repeat(1 << 18),           // 1.25 MB of entities
        };
        for (String p : prompts) {
            Encoding[] e = new Encoding[1];
            long ms = timeMillis(() -> e[0] = folder.encode(p));
            System.out.printf("1 MB prompt (%s...): %d ms, %d tokens%n", p.substring(0, 12), ms, e[0].untruncatedIds().length);
            assertEquals(77, e[0].ids().length);
            assertEquals(49407, e[0].ids()[76]);
            assertTrue(ms < 30_000, "took " + ms + " ms"); // a hang guard, not a speed check (see benchmarks/)
        }
        // Adversarial: 1 MB of random bytes read as Latin-1 (mojibake-like everywhere, ~1M tokens).
        byte[] noise = new byte[1 << 20];
        r.nextBytes(noise);
        String latin1 = new String(noise, StandardCharsets.ISO_8859_1);
        folder.encode(latin1.substring(0, 20_000)); // warm up
        Encoding[] e = new Encoding[1];
        long ms = timeMillis(() -> e[0] = folder.encode(latin1));
        System.out.printf("1 MB of random Latin-1 bytes: %d ms, %d tokens%n", ms, e[0].untruncatedIds().length);
        assertTrue(ms < 30_000, "took " + ms + " ms"); // a hang guard, not a speed check (see benchmarks/)
    }

    @Test
    void longWordBpeIsExact() {
        // The heap-based merge loop must equal the reference loop; compare a long word with its pieces where the
        // reference result is known: a repeated chunk splits into repeated tokens.
        List<String> one = folder.tokens("abcdefghij");
        assertEquals(folder.tokens("abcdefghij"), one);
        List<String> many = folder.tokens("hello ".repeat(1000).strip());
        assertEquals(1000, many.size());
        assertTrue(many.stream().allMatch("hello</w>"::equals));
        List<String> aaa = folder.tokens("a".repeat(64));
        assertEquals("a".repeat(64), String.join("", aaa).replace("</w>", ""));
    }

    @Test
    void concurrentUseGivesTheSameIds() throws Exception {
        List<String> prompts = new ArrayList<>();
        for (JsonNode p : golden.get("prompts")) prompts.add(p.get("prompt").asText());
        List<long[]> expected = new ArrayList<>();
        for (String p : prompts) expected.add(folder.encode(p).untruncatedIds());
        ClipTokenizer fresh = ClipTokenizer.fromFolder(CLIP_DIR); // cold cache, filled concurrently
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try {
            List<Future<Boolean>> results = new ArrayList<>();
            for (int t = 0; t < 8; t++) {
                results.add(pool.submit(() -> {
                    for (int round = 0; round < 20; round++) {
                        for (int i = 0; i < prompts.size(); i++) {
                            if (!Arrays.equals(expected.get(i), fresh.encode(prompts.get(i)).untruncatedIds())) return false;
                        }
                    }
                    return true;
                }));
            }
            for (Future<Boolean> f : results) assertTrue(f.get());
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void throughputIsPrinted() {
        Random r = new Random(7);
        List<String> prompts = new ArrayList<>();
        for (JsonNode p : golden.get("prompts")) prompts.add(p.get("prompt").asText());
        while (prompts.size() < 10_000) prompts.add(randomText(r, 40 + r.nextInt(300), true));
        for (int i = 0; i < 500; i++) folder.encode(prompts.get(i)); // warm up
        long t0 = System.nanoTime();
        long tokens = 0;
        for (String p : prompts) tokens += folder.encode(p).length();
        double s = (System.nanoTime() - t0) / 1e9;
        System.out.printf("CLIP tokenizer throughput: %d prompts in %.2f s = %.0f prompts/s (%.0f tokens/s, single thread)%n",
                prompts.size(), s, prompts.size() / s, tokens / s);
    }
}
