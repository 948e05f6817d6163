package io.mmdit4j.golden;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.mmdit4j.text.Encoding;
import io.mmdit4j.text.clip.ClipTokenizer;
import io.mmdit4j.text.t5.T5Tokenizer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.BiFunction;

/**
 * {@code token_ids.json}: every prompt through the CLIP tokenizer (77) and the T5 tokenizer (each max length,
 * {@code legacy=false} and {@code legacy=true}), ids and masks compared exactly. One result line per
 * tokenizer variant; each mismatching prompt is printed with both id lists.
 */
final class TokenIdsCases {
    private TokenIdsCases() {}

    static List<CaseResult> run(Path json, Path tokenizersDir) {
        String name = json.toString();
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(Files.readString(json));
        } catch (IOException e) {
            return List.of(CaseResult.error(name, "-", "cannot read: " + e.getMessage()));
        }
        Path dir = tokenizersDir != null ? tokenizersDir : findTokenizers(json);
        if (dir == null) {
            return List.of(CaseResult.error(name, "-", "no tokenizers folder (clip/vocab.json, t5/spiece.model) found near the file; pass --tokenizers"));
        }
        List<CaseResult> results = new ArrayList<>();
        try {
            ClipTokenizer clip = ClipTokenizer.fromFolder(dir.resolve("clip"));
            results.add(check(name, "clip", root, "clip", null, (p, len) -> clip.encode(p)));
        } catch (RuntimeException e) {
            results.add(CaseResult.failed(name, "clip", e));
        }
        for (String variant : new String[] {"t5", "t5_legacy"}) {
            try {
                T5Tokenizer t5 = variant.equals("t5") ? T5Tokenizer.fromFolder(dir.resolve("t5"))
                        : T5Tokenizer.fromSpiece(dir.resolve("t5/spiece.model"), true);
                for (String len : lengths(root, variant)) {
                    results.add(check(name, variant + "@" + len, root, variant, len, (p, l) -> t5.encode(p, l)));
                }
            } catch (RuntimeException e) {
                results.add(CaseResult.failed(name, variant, e));
            }
        }
        return results;
    }

    private static List<String> lengths(JsonNode root, String variant) {
        List<String> out = new ArrayList<>();
        JsonNode first = root.path("prompts").path(0).path(variant);
        first.fieldNames().forEachRemaining(f -> {
            if (f.chars().allMatch(Character::isDigit)) out.add(f);
        });
        return out;
    }

    private static CaseResult check(String name, String output, JsonNode root, String key, String len,
                                    BiFunction<String, Integer, Encoding> tokenize) {
        int total = 0, bad = 0;
        StringBuilder detail = new StringBuilder();
        for (JsonNode p : root.path("prompts")) {
            JsonNode expected = len == null ? p.path(key) : p.path(key).path(len);
            if (!expected.has("input_ids")) continue;
            total++;
            String prompt = p.path("prompt").asText();
            long[] ids = longs(expected.get("input_ids")), mask = longs(expected.path("attention_mask"));
            Encoding e;
            try {
                e = tokenize.apply(prompt, len == null ? ids.length : Integer.parseInt(len));
            } catch (RuntimeException ex) {
                bad++;
                detail.append("\n  prompt ").append(p.path("index").asText()).append(": error ").append(ex.getMessage());
                continue;
            }
            if (!Arrays.equals(ids, e.ids()) || (mask.length > 0 && !Arrays.equals(mask, e.attentionMask()))) {
                bad++;
                detail.append("\n  prompt ").append(p.path("index").asText()).append(' ').append(quote(prompt))
                        .append("\n    expected ").append(Arrays.toString(ids)).append("\n    actual   ").append(Arrays.toString(e.ids()));
                if (!Arrays.equals(mask, e.attentionMask())) detail.append(" (attention mask differs)");
            }
        }
        String summary = (total - bad) + "/" + total + " prompts exact";
        return new CaseResult(bad == 0 && total > 0 ? CaseResult.Status.PASS : CaseResult.Status.FAIL, name, output, summary + detail);
    }

    private static long[] longs(JsonNode a) {
        long[] out = new long[a.size()];
        for (int i = 0; i < out.length; i++) out[i] = a.get(i).asLong();
        return out;
    }

    private static String quote(String s) {
        String t = s.length() > 80 ? s.substring(0, 77) + "..." : s;
        return "\"" + t.replace("\n", "\\n") + "\"";
    }

    /** A {@code tokenizers/} folder next to the file or next to one of its ancestors (shared/golden/... -> shared/tokenizers). */
    static Path findTokenizers(Path json) {
        for (Path d = json.toAbsolutePath().getParent(); d != null; d = d.getParent()) {
            Path candidate = d.resolve("tokenizers");
            if (Files.isRegularFile(candidate.resolve("clip/vocab.json")) && Files.isRegularFile(candidate.resolve("t5/spiece.model"))) {
                return candidate;
            }
            if (Files.isRegularFile(d.resolve("clip/vocab.json")) && Files.isRegularFile(d.resolve("t5/spiece.model"))) return d;
        }
        return null;
    }
}
