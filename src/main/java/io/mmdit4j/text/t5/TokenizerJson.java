package io.mmdit4j.text.t5;

import com.fasterxml.jackson.databind.JsonNode;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;

/**
 * Reads a Hugging Face fast-tokenizer {@code tokenizer.json} with a {@code Unigram} model (as converted from a
 * sentencepiece T5 model by transformers' {@code SpmConverter}) into the same {@link SentencePieceModel} the
 * {@code spiece.model} path builds, so both feed the same normaliser and Viterbi:
 * <ul>
 *   <li>{@code model.vocab} {@code [[piece, score], ...]} gives the pieces in id order; {@code model.unk_id} is the
 *       UNKNOWN piece; pieces that are special {@code added_tokens} at the same id are CONTROL (never matched inside
 *       text, as in sentencepiece); with {@code model.byte_fallback}, {@code <0xXX>} pieces are BYTE; the rest are
 *       NORMAL.</li>
 *   <li>The {@code Precompiled} normaliser's base64 {@code precompiled_charsmap} is the charsmap; a
 *       {@code Replace} of {@code " {2,}"} (or a {@code Strip} normaliser or a {@code WhitespaceSplit}
 *       pre-tokeniser) means {@code remove_extra_whitespaces}.</li>
 *   <li>The {@code Metaspace} pre-tokeniser gives {@code add_dummy_prefix} ({@code add_prefix_space} or
 *       {@code prepend_scheme} other than {@code "never"}) and {@code escape_whitespaces} (replacement U+2581);
 *       {@code prepend_scheme "first"} is what transformers writes for {@code legacy=False}.</li>
 *   <li>{@code added_tokens} become the added-tokens table (ids and lstrip/rstrip/single_word as given).</li>
 * </ul>
 * The post-processor and decoder are not read: the T5 layer appends {@code </s>} itself.
 */
final class TokenizerJson {
    final SentencePieceModel model;
    final Map<Integer, TokenizerConfig.AddedToken> addedTokens;  // id -> token, file order
    final Boolean legacyHint;   // false for prepend_scheme "first", true for "always"/add_prefix_space, else null

    private TokenizerJson(SentencePieceModel model, Map<Integer, TokenizerConfig.AddedToken> addedTokens, Boolean legacyHint) {
        this.model = model;
        this.addedTokens = addedTokens;
        this.legacyHint = legacyHint;
    }

    static TokenizerJson read(Path file) {
        JsonNode root = TokenizerConfig.readJson(file);
        if (!root.isObject()) throw new T5TokenizerFileException(file, "expected a JSON object", null);
        JsonNode model = root.get("model");
        if (model == null || !model.isObject()) throw new T5TokenizerFileException(file, "no \"model\" object", null);
        String type = model.path("type").asText("");
        if (!type.equals("Unigram")) {
            throw new T5TokenizerFileException(file, "model.type \"" + type + "\" is not supported (only \"Unigram\")", null);
        }
        JsonNode vocab = model.get("vocab");
        if (vocab == null || !vocab.isArray() || vocab.isEmpty()) {
            throw new T5TokenizerFileException(file, "model.vocab must be a non-empty list of [piece, score]", null);
        }
        int size = vocab.size();
        String[] pieces = new String[size];
        float[] scores = new float[size];
        int[] types = new int[size];
        for (int i = 0; i < size; i++) {
            JsonNode e = vocab.get(i);
            if (!e.isArray() || e.size() != 2 || !e.get(0).isTextual() || !e.get(1).isNumber()) {
                throw new T5TokenizerFileException(file, "model.vocab[" + i + "] is not [string, number]", null);
            }
            pieces[i] = e.get(0).asText();
            scores[i] = (float) e.get(1).asDouble();
            types[i] = SentencePieceModel.NORMAL;
        }
        JsonNode unk = model.get("unk_id");
        if (unk == null || unk.isNull()) throw new T5TokenizerFileException(file, "model.unk_id is missing", null);
        if (!unk.canConvertToInt() || unk.asInt() < 0 || unk.asInt() >= size) {
            throw new T5TokenizerFileException(file, "model.unk_id " + unk + " is not an index into model.vocab", null);
        }
        int unkId = unk.asInt();
        boolean byteFallback = model.path("byte_fallback").asBoolean(false);

        Map<Integer, TokenizerConfig.AddedToken> added = new java.util.LinkedHashMap<>();
        JsonNode at = root.get("added_tokens");
        if (at != null && !at.isNull()) {
            if (!at.isArray()) throw new T5TokenizerFileException(file, "\"added_tokens\" must be a list", null);
            for (int i = 0; i < at.size(); i++) {
                JsonNode t = at.get(i);
                JsonNode id = t.get("id");
                JsonNode content = t.get("content");
                if (id == null || !id.canConvertToInt() || id.asInt() < 0 || content == null || !content.isTextual()
                        || content.asText().isEmpty()) {
                    throw new T5TokenizerFileException(file, "added_tokens[" + i + "] needs an integer \"id\" and a non-empty \"content\"", null);
                }
                added.put(id.asInt(), new TokenizerConfig.AddedToken(content.asText(), t.path("lstrip").asBoolean(false),
                        t.path("rstrip").asBoolean(false), t.path("single_word").asBoolean(false),
                        t.path("special").asBoolean(false)));
            }
        }
        for (int i = 0; i < size; i++) {
            TokenizerConfig.AddedToken t = added.get(i);
            if (i == unkId) types[i] = SentencePieceModel.UNKNOWN;
            else if (t != null && t.special() && t.content().equals(pieces[i])) types[i] = SentencePieceModel.CONTROL;
            else if (byteFallback && pieces[i].matches("<0x[0-9A-F]{2}>")) types[i] = SentencePieceModel.BYTE;
        }

        // Normaliser.
        List<JsonNode> normalizers = new ArrayList<>();
        flatten(root.get("normalizer"), "normalizers", normalizers);
        byte[] charsmap = new byte[0];
        boolean removeExtra = false;
        for (JsonNode n : normalizers) {
            String t = n.path("type").asText("");
            switch (t) {
                case "Precompiled" -> {
                    JsonNode cm = n.get("precompiled_charsmap");
                    if (cm != null && !cm.isNull()) {
                        if (!cm.isTextual()) throw new T5TokenizerFileException(file, "precompiled_charsmap must be a base64 string", null);
                        try {
                            charsmap = Base64.getDecoder().decode(cm.asText());
                        } catch (IllegalArgumentException e) {
                            throw new T5TokenizerFileException(file, "precompiled_charsmap is not valid base64: " + e.getMessage(), e);
                        }
                    }
                }
                case "Replace" -> {
                    JsonNode pattern = n.path("pattern");
                    String regex = pattern.path("Regex").asText(null);
                    if (" {2,}".equals(regex)) removeExtra = true;
                }
                case "Strip" -> removeExtra = true;
                default -> { }
            }
        }
        // Pre-tokeniser.
        List<JsonNode> pre = new ArrayList<>();
        flatten(root.get("pre_tokenizer"), "pretokenizers", pre);
        boolean addDummyPrefix = false, escape = false;
        Boolean legacyHint = null;
        for (JsonNode p : pre) {
            String t = p.path("type").asText("");
            if (t.equals("WhitespaceSplit")) removeExtra = true;
            if (t.equals("Metaspace")) {
                escape = "\u2581".equals(p.path("replacement").asText("\u2581"));
                String scheme = p.path("prepend_scheme").asText(null);
                if (scheme != null) {
                    addDummyPrefix = !scheme.equals("never");
                    if (scheme.equals("first")) legacyHint = false;
                    else if (scheme.equals("always")) legacyHint = true;
                } else {
                    addDummyPrefix = p.path("add_prefix_space").asBoolean(true);
                    legacyHint = addDummyPrefix ? Boolean.TRUE : null;
                }
            }
        }
        SentencePieceModel m = new SentencePieceModel(file, pieces, scores, types, SentencePieceModel.UNIGRAM, unkId, -1,
                -1, -1, byteFallback, false, charsmap.length > 0 ? "precompiled" : "identity", charsmap, addDummyPrefix,
                removeExtra, escape);
        m.validate();
        return new TokenizerJson(m, added, legacyHint);
    }

    private static void flatten(JsonNode n, String listKey, List<JsonNode> out) {
        if (n == null || n.isNull()) return;
        if ("Sequence".equals(n.path("type").asText(""))) {
            for (JsonNode c : n.path(listKey)) flatten(c, listKey, out);
        } else {
            out.add(n);
        }
    }
}
