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
import java.nio.charset.StandardCharsets;
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
}
