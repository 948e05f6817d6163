package io.mmdit4j.text.t5;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.mmdit4j.text.Encoding;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link T5Tokenizer} (transformers 4.38.0 slow T5Tokenizer over sentencepiece 0.1.97) against the golden token ids
 * of {@code shared/golden/tokenizers/token_ids.json}: {@code t5} = FLUX.1 tokenizer_2 config (legacy=False),
 * {@code t5_legacy} = SD3 tokenizer_3 config (legacy=True, sentinels with lstrip/rstrip), at max_length 256 and 512.
 * Files are read in place from {@code -Dmmdit.tokenizers} / {@code -Dmmdit.golden}.
 */
class T5TokenizerTest {
    static final Path TOKENIZERS = Path.of(System.getProperty("mmdit.tokenizers", "../shared/tokenizers"));
    static final Path GOLDEN = Path.of(System.getProperty("mmdit.golden", "../shared/golden"));
    static final Path FLUX_DIR = TOKENIZERS.resolve("t5");
    static final Path SD3_DIR = GOLDEN.resolve("sd3_pipeline/models/sd35-tiny-large/tokenizer_3");
    static final ObjectMapper JSON = new ObjectMapper();

    static T5Tokenizer flux;
    static T5Tokenizer sd3;
    static JsonNode golden;

    @BeforeAll
    static void load() throws IOException {
        flux = T5Tokenizer.fromFolder(FLUX_DIR);
        sd3 = T5Tokenizer.fromFolder(SD3_DIR);
        golden = JSON.readTree(GOLDEN.resolve("tokenizers/token_ids.json").toFile());
    }

    static long[] longs(JsonNode array) {
        long[] out = new long[array.size()];
        for (int i = 0; i < out.length; i++) out[i] = array.get(i).asLong();
        return out;
    }

    static String describe(JsonNode p) {
        String prompt = p.get("prompt").asText();
        String shown = prompt.length() > 300 ? prompt.substring(0, 300) + "...(" + prompt.length() + " chars)" : prompt;
        return "prompt #" + p.get("index").asInt() + " " + JSON.valueToTree(shown);
    }

    /** Compares one tokenizer with one golden variant; returns the mismatch descriptions (one per prompt). */
    static List<String> mismatches(T5Tokenizer tok, String variant) {
        List<String> bad = new ArrayList<>();
        for (JsonNode p : golden.get("prompts")) {
            String prompt = p.get("prompt").asText();
            JsonNode g = p.get(variant);
            StringBuilder why = new StringBuilder();
            for (String len : new String[]{"256", "512"}) {
                Encoding e = tok.encode(prompt, Integer.parseInt(len));
                long[] ids = longs(g.get(len).get("input_ids"));
                long[] mask = longs(g.get(len).get("attention_mask"));
                if (!Arrays.equals(ids, e.ids())) {
                    why.append("\n  [").append(len).append("] input_ids expected ").append(Arrays.toString(trim(ids, mask)))
                            .append("\n  [").append(len).append("] input_ids actual   ").append(Arrays.toString(trim(e.ids(), e.attentionMask())));
                }
                if (!Arrays.equals(mask, e.attentionMask())) {
                    why.append("\n  [").append(len).append("] mask length expected ").append(Arrays.stream(mask).sum())
                            .append(", actual ").append(Arrays.stream(e.attentionMask()).sum());
                }
            }
            long[] untruncated = longs(g.get("ids_untruncated"));
            Encoding e = tok.encode(prompt, 256);
            if (!Arrays.equals(untruncated, e.untruncatedIds())) {
                why.append("\n  ids_untruncated expected ").append(Arrays.toString(untruncated))
                        .append("\n  ids_untruncated actual   ").append(Arrays.toString(e.untruncatedIds()));
            }
            JsonNode tokens = g.get("tokens_untruncated");
            if (tokens != null && tokens.isArray()) {
                List<String> expected = new ArrayList<>();
                tokens.forEach(t -> expected.add(t.asText()));
                List<String> actual = tok.pieces(prompt);
                if (!expected.equals(actual)) {
                    why.append("\n  tokens expected ").append(expected).append("\n  tokens actual   ").append(actual);
                }
            }
            if (why.length() > 0) bad.add(describe(p) + why);
        }
        return bad;
    }

    /** The real (mask = 1) part of an id row, for readable messages. */
    static long[] trim(long[] ids, long[] mask) {
        int n = 0;
        while (n < mask.length && mask[n] == 1) n++;
        return Arrays.copyOf(ids, n);
    }

    static void assertNoMismatches(List<String> bad, String what) {
        int total = golden.get("prompts").size();
        System.out.println(what + ": " + (total - bad.size()) + "/" + total + " prompts exact");
        assertTrue(bad.isEmpty(), what + ": " + bad.size() + " of " + total + " prompts differ:\n" + String.join("\n", bad));
    }

    @Test
    void goldenFluxLegacyFalse() {
        assertFalse(flux.legacy());
        assertNoMismatches(mismatches(flux, "t5"), "t5 (FLUX tokenizer_2, legacy=False)");
    }

    @Test
    void goldenSd3LegacyTrue() {
        assertTrue(sd3.legacy());
        assertNoMismatches(mismatches(sd3, "t5_legacy"), "t5_legacy (SD3 tokenizer_3, legacy=True)");
    }

    // ---------------------------------------------------------------------------------------------------------------
    // tokenizer.json (fast-tokenizer file) path

    /**
     * Writes a Hugging Face {@code tokenizer.json} (Unigram) made from the parsed {@code spiece.model}: the same
     * vocabulary and scores, the same precompiled charsmap in base64, Metaspace with the given prepend scheme, and the
     * 103 added tokens. With {@code sentinelsInVocab} the 100 sentinels are also in {@code model.vocab} (as the
     * converted T5 files have them).
     */
    static Path writeTokenizerJson(Path dir, String prependScheme, boolean sentinelStrip, boolean sentinelsInVocab)
            throws IOException {
        SentencePieceModel m = SentencePieceModel.read(FLUX_DIR.resolve("spiece.model"));
        ObjectNode root = JSON.createObjectNode();
        root.put("version", "1.0");
        ArrayNode added = root.putArray("added_tokens");
        String[] specials = {"<pad>", "</s>", "<unk>"};
        for (int i = 0; i < 3; i++) addedToken(added, i, specials[i], false);
        for (int id = 32000; id < 32100; id++) addedToken(added, id, "<extra_id_" + (32099 - id) + ">", sentinelStrip);
        ObjectNode norm = root.putObject("normalizer");
        norm.put("type", "Sequence");
        ArrayNode ns = norm.putArray("normalizers");
        ns.addObject().put("type", "Precompiled").put("precompiled_charsmap",
                Base64.getEncoder().encodeToString(m.precompiledCharsmap));
        ObjectNode replace = ns.addObject().put("type", "Replace");
        replace.putObject("pattern").put("Regex", " {2,}");
        replace.put("content", " ");
        root.putObject("pre_tokenizer").put("type", "Metaspace").put("replacement", "\u2581")
                .put("add_prefix_space", true).put("prepend_scheme", prependScheme);
        ObjectNode model = root.putObject("model");
        model.put("type", "Unigram");
        model.put("unk_id", 2);
        ArrayNode vocab = model.putArray("vocab");
        for (int i = 0; i < m.size(); i++) vocab.addArray().add(m.pieces[i]).add((double) m.scores[i]);
        if (sentinelsInVocab) {
            for (int id = 32000; id < 32100; id++) vocab.addArray().add("<extra_id_" + (32099 - id) + ">").add(0.0);
        }
        model.put("byte_fallback", false);
        Path file = dir.resolve("tokenizer.json");
        JSON.writeValue(file.toFile(), root);
        return file;
    }

    static void addedToken(ArrayNode added, int id, String content, boolean strip) {
        added.addObject().put("id", id).put("content", content).put("single_word", false).put("lstrip", strip)
                .put("rstrip", strip).put("normalized", false).put("special", true);
    }

    /** Every golden prompt gives identical pieces, ids (256 and 512) and untruncated ids with both tokenizers. */
    static void assertSameOnGolden(T5Tokenizer expected, T5Tokenizer actual) {
        List<String> bad = new ArrayList<>();
        for (JsonNode p : golden.get("prompts")) {
            String prompt = p.get("prompt").asText();
            for (int len : new int[]{256, 512}) {
                Encoding a = expected.encode(prompt, len), b = actual.encode(prompt, len);
                if (!Arrays.equals(a.ids(), b.ids()) || !Arrays.equals(a.attentionMask(), b.attentionMask())
                        || !Arrays.equals(a.untruncatedIds(), b.untruncatedIds())) {
                    bad.add(describe(p) + " [" + len + "]\n  spiece         " + Arrays.toString(a.untruncatedIds())
                            + "\n  tokenizer.json " + Arrays.toString(b.untruncatedIds()));
                }
            }
            if (!expected.pieces(prompt).equals(actual.pieces(prompt))) bad.add(describe(p) + " pieces differ");
        }
        assertNoMismatches(bad, "tokenizer.json vs spiece.model");
    }

    @Test
    void tokenizerJsonMatchesSpieceLegacyFalse(@TempDir Path dir) throws IOException {
        writeTokenizerJson(dir, "first", false, false);
        T5Tokenizer fromJson = T5Tokenizer.fromFolder(dir);  // no spiece.model: reads tokenizer.json
        assertFalse(fromJson.legacy(), "prepend_scheme \"first\" is transformers' legacy=False conversion");
        assertEquals(dir.resolve("tokenizer.json"), fromJson.source());
        assertSameOnGolden(flux, fromJson);
        assertEquals(flux.vocabSize(), fromJson.vocabSize());
    }

    @Test
    void tokenizerJsonMatchesSpieceLegacyTrue(@TempDir Path dir) throws IOException {
        writeTokenizerJson(dir, "always", true, true);
        T5Tokenizer fromJson = T5Tokenizer.fromFolder(dir);
        assertTrue(fromJson.legacy());
        assertSameOnGolden(sd3, fromJson);
        assertSameOnGolden(sd3, T5Tokenizer.fromTokenizerJson(dir.resolve("tokenizer.json"), true));
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Behaviour around special tokens, truncation and API edges (expected ids from sentencepiece 0.1.97 + the
    // transformers 4.38.0 code paths)

    static long[] real(Encoding e) {
        return trim(e.ids(), e.attentionMask());
    }

    @Test
    void legacyDifferenceAroundSentinels() {
        // transformers' T5Tokenizer docstring: legacy=True keeps a "▁" after <extra_id_0>, legacy=False does not.
        assertArrayEquals(new long[]{8774, 32099, 3, 5, 1}, real(sd3.encode("Hello <extra_id_0>.", 16)));
        assertArrayEquals(new long[]{8774, 32099, 5, 1}, real(flux.encode("Hello <extra_id_0>.", 16)));
        assertArrayEquals(new long[]{8774, 32099, 5, 1},
                real(T5Tokenizer.fromSpiece(FLUX_DIR.resolve("spiece.model"), false).encode("Hello <extra_id_0>.", 16)));
        // With the default sentinels (rstrip=True) and legacy=False the word after a sentinel loses its "▁".
        T5Tokenizer nonLegacyDefault = T5Tokenizer.fromSpiece(FLUX_DIR.resolve("spiece.model"), false);
        assertEquals(List.of("<extra_id_0>", "h", "i"), nonLegacyDefault.pieces("<extra_id_0> hi"));
        assertEquals(List.of("<extra_id_0>", "\u2581hi"), flux.pieces("<extra_id_0> hi"));
        assertEquals(List.of("\u2581hi", "<extra_id_0>", "\u2581there"), sd3.pieces("hi <extra_id_0>  there"));
        assertEquals(List.of("\u2581", "x", "<pad>", "<unk>"), flux.pieces("x <pad><unk>"));
        assertArrayEquals(new long[]{3, 226, 0, 2, 1}, real(flux.encode("x <pad><unk>", 8)));
    }

    @Test
    void typedEosIsNotDoubledAndTruncationKeepsIt() {
        assertArrayEquals(new long[]{1, 0, 0, 0}, flux.encode("</s>", 4).ids());
        assertArrayEquals(new long[]{1, 0, 0, 0}, sd3.encode(" </s> ", 4).attentionMask());
        // _add_eos_if_not_present after truncation: a typed </s> landing last means no second </s> (7 real ids of 8).
        Encoding e = flux.encode("a b c</s> d e", 8);
        assertArrayEquals(new long[]{3, 9, 3, 115, 3, 75, 1, 0}, e.ids());
        assertArrayEquals(new long[]{1, 1, 1, 1, 1, 1, 1, 0}, e.attentionMask());
        assertArrayEquals(new long[]{3, 9, 3, 115, 3, 75, 1, 3, 26, 3, 15, 1}, e.untruncatedIds());
        // Plain truncation: L-1 content ids then </s>.
        Encoding cats = sd3.encode("cat ".repeat(300), 256);
        assertEquals(256, cats.length());
        assertEquals(1712, cats.ids()[254]);
        assertEquals(1, cats.ids()[255]);
        assertEquals(301, cats.untruncatedIds().length);
        assertTrue(cats.truncated());
    }

    @Test
    void apiEdges() {
        assertEquals(32100, flux.vocabSize());
        assertEquals(32100, sd3.vocabSize());
        assertEquals(1, flux.eosId());
        assertEquals(0, flux.padId());
        assertThrows(IllegalArgumentException.class, () -> flux.encode(null, 256));
        IllegalArgumentException tooShort = assertThrows(IllegalArgumentException.class, () -> flux.encode("a", 1));
        assertTrue(tooShort.getMessage().contains("maxLength"), tooShort.getMessage());
        assertArrayEquals(new long[]{1, 0}, flux.encode("", 2).ids());
        assertEquals(List.of(), flux.pieces(""));
    }

    @Test
    void loneSurrogatesBecomeReplacementCharacters() {
        // Documented choice: an unpaired surrogate is read as U+FFFD (which T5's nmt_nfkc charsmap turns into a space).
        for (T5Tokenizer t : new T5Tokenizer[]{flux, sd3}) {
            String[][] cases = {
                    {"a\uD800b", "a\uFFFDb"}, {"a\uDC00b", "a\uFFFDb"}, {"\uD83D", "\uFFFD"}, {"x\uDE00", "x\uFFFD"},
                    {"\uDC00\uD800 cat \uD800", "\uFFFD\uFFFD cat \uFFFD"}, {"<extra_id_0>\uD800", "<extra_id_0>\uFFFD"}};
            for (String[] c : cases) {
                assertArrayEquals(t.encode(c[1], 32).ids(), t.encode(c[0], 32).ids(), c[1]);
                assertEquals(t.pieces(c[1]), t.pieces(c[0]));
            }
            assertArrayEquals(new long[]{3, 9, 3, 115, 1}, real(t.encode("a\uD800b", 8)));
            // A valid pair is untouched: one emoji is one unknown piece.
            assertEquals(List.of("\u2581", "\uD83D\uDE00"), t.pieces("\uD83D\uDE00"));
        }
    }

    static String megabytePrompt() {
        Random r = new Random(42);
        String[] words = {"a", "photo", "of", "cat,", "\u65e5\u672c\u8a9e", "<extra_id_0>", "</s>", "  ", "\uD83D\uDE00",
                "\uFF46\uFF55\uFF4C\uFF4C", "x\ty", "caf\u00e9", "1,000.5"};
        StringBuilder sb = new StringBuilder(1_000_100);
        while (sb.length() < 1_000_000) sb.append(words[r.nextInt(words.length)]).append(' ');
        return sb.toString();
    }

    @Test
    void megabytePromptFinishesInLinearTime() { // a hang guard, not a speed check: quadratic work on 1 MB takes minutes
        String big = megabytePrompt();
        for (T5Tokenizer t : new T5Tokenizer[]{flux, sd3}) {
            t.encode(big.substring(0, 20_000), 256);  // warm-up
            long t0 = System.nanoTime();
            Encoding e = t.encode(big, 512);
            double ms = (System.nanoTime() - t0) / 1e6;
            System.out.printf("1 MB prompt (legacy=%s): %.0f ms, %d ids before truncation%n", t.legacy(), ms,
                    e.untruncatedIds().length);
            assertEquals(512, e.ids().length);
            assertTrue(e.untruncatedIds().length > 100_000);
            assertTrue(ms < 30_000, "1 MB prompt took " + ms + " ms");
            // One pathological shape: a million characters without any piece (one long run of unknowns).
            t0 = System.nanoTime();
            Encoding u = t.encode("\u65e5".repeat(1_000_000), 256);
            ms = (System.nanoTime() - t0) / 1e6;
            assertArrayEquals(new long[]{3, 2, 1}, u.untruncatedIds());
            assertTrue(ms < 30_000, "1M unknown characters took " + ms + " ms");
        }
    }

    @Test
    void parallelUseGivesTheSameIds() throws Exception {
        List<String> prompts = new ArrayList<>();
        golden.get("prompts").forEach(p -> prompts.add(p.get("prompt").asText()));
        List<long[]> expected = new ArrayList<>();
        for (String p : prompts) expected.add(flux.encode(p, 256).ids());
        java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(4);
        try {
            List<java.util.concurrent.Future<Boolean>> fs = new ArrayList<>();
            for (int k = 0; k < 8; k++) {
                fs.add(pool.submit(() -> {
                    for (int i = 0; i < prompts.size(); i++) {
                        if (!Arrays.equals(expected.get(i), flux.encode(prompts.get(i), 256).ids())) return false;
                    }
                    return true;
                }));
            }
            for (var f : fs) assertTrue(f.get());
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void throughputIsPrinted() {
        List<String> prompts = new ArrayList<>();
        golden.get("prompts").forEach(p -> prompts.add(p.get("prompt").asText()));
        Random r = new Random(7);
        String[] words = "a photo of the cat dog highly detailed 8k portrait, cinematic lighting; masterpiece (best quality)"
                .split(" ");
        while (prompts.size() < 10_000) {
            StringBuilder sb = new StringBuilder();
            int n = 5 + r.nextInt(60);
            for (int i = 0; i < n; i++) sb.append(words[r.nextInt(words.length)]).append(' ');
            prompts.add(sb.toString());
        }
        for (T5Tokenizer t : new T5Tokenizer[]{flux, sd3}) {
            for (int i = 0; i < 2000; i++) t.encode(prompts.get(i), 256);  // warm-up
            long t0 = System.nanoTime();
            long ids = 0;
            for (String p : prompts) ids += t.encode(p, 256).length();
            double s = (System.nanoTime() - t0) / 1e9;
            System.out.printf("throughput (legacy=%s): 10,000 prompts in %.2f s = %.0f prompts/s (%d real ids)%n",
                    t.legacy(), s, prompts.size() / s, ids);
        }
    }

    @Test
    void fromSpieceDefaultsMatchTheGoldenForPlainPrompts() {
        // Without tokenizer_config.json: legacy as asked, sentinels at 32099..32000 with lstrip/rstrip.
        T5Tokenizer legacy = T5Tokenizer.fromSpiece(FLUX_DIR.resolve("spiece.model"), true);
        assertNoMismatches(mismatches(legacy, "t5_legacy"), "fromSpiece(legacy=true) vs t5_legacy");
        T5Tokenizer plain = T5Tokenizer.fromSpiece(FLUX_DIR.resolve("spiece.model"), false);
        assertEquals(List.of("<extra_id_99>", "<extra_id_0>"), plain.pieces("<extra_id_99><extra_id_0>"));
        assertArrayEquals(new long[]{32000, 32099, 1}, real(plain.encode("<extra_id_99><extra_id_0>", 8)));
    }
}
