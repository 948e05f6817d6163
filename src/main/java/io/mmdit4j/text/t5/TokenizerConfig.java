package io.mmdit4j.text.t5;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What transformers' {@code T5Tokenizer.from_pretrained} takes from {@code tokenizer_config.json} and
 * {@code special_tokens_map.json}: {@code legacy}, the special tokens, {@code extra_ids},
 * {@code additional_special_tokens} and {@code added_tokens_decoder} (with each token's lstrip/rstrip/single_word).
 * {@code add_prefix_space} is recorded but, as in transformers 4.38.0 (whose {@code T5Tokenizer} has no such
 * argument), has no effect.
 */
final class TokenizerConfig {
    /** A transformers {@code AddedToken}. */
    record AddedToken(String content, boolean lstrip, boolean rstrip, boolean singleWord, boolean special) {
        static AddedToken special(String content) {
            return new AddedToken(content, false, false, false, true);
        }
    }

    Path file;                      // tokenizer_config.json (or the folder) for messages
    Boolean legacy;                 // null = not given (transformers then uses True)
    Boolean addPrefixSpace;
    AddedToken bosToken, eosToken = AddedToken.special("</s>"), unkToken = AddedToken.special("<unk>"),
            sepToken, padToken = AddedToken.special("<pad>"), clsToken, maskToken;
    int extraIds = 100;
    List<AddedToken> additionalSpecialTokens;                   // null = not given
    final Map<Integer, AddedToken> addedTokensDecoder = new LinkedHashMap<>();

    static TokenizerConfig defaults(Path file) {
        TokenizerConfig c = new TokenizerConfig();
        c.file = file;
        return c;
    }

    /** Reads {@code tokenizer_config.json} and {@code special_tokens_map.json} from {@code dir} when present. */
    static TokenizerConfig read(Path dir) {
        TokenizerConfig c = defaults(dir);
        Path map = dir.resolve("special_tokens_map.json");
        if (Files.isRegularFile(map)) c.applySpecialTokens(readJson(map), map);
        Path cfg = dir.resolve("tokenizer_config.json");
        if (Files.isRegularFile(cfg)) {
            c.file = cfg;
            JsonNode root = readJson(cfg);
            c.applySpecialTokens(root, cfg);
            JsonNode legacy = root.get("legacy");
            if (legacy != null && !legacy.isNull()) {
                if (!legacy.isBoolean()) throw new T5TokenizerFileException(cfg, "\"legacy\" must be true, false or null", null);
                c.legacy = legacy.booleanValue();
            }
            JsonNode aps = root.get("add_prefix_space");
            if (aps != null && aps.isBoolean()) c.addPrefixSpace = aps.booleanValue();
            JsonNode extra = root.get("extra_ids");
            if (extra != null && !extra.isNull()) {
                if (!extra.canConvertToInt() || extra.asInt() < 0 || !extra.isIntegralNumber()) {
                    throw new T5TokenizerFileException(cfg, "\"extra_ids\" must be a non-negative integer", null);
                }
                c.extraIds = extra.asInt();
            }
            JsonNode decoder = root.get("added_tokens_decoder");
            if (decoder != null && !decoder.isNull()) {
                if (!decoder.isObject()) throw new T5TokenizerFileException(cfg, "\"added_tokens_decoder\" must be an object", null);
                var it = decoder.fields();
                while (it.hasNext()) {
                    var e = it.next();
                    int id;
                    try {
                        id = Integer.parseInt(e.getKey());
                    } catch (NumberFormatException ex) {
                        throw new T5TokenizerFileException(cfg, "added_tokens_decoder key \"" + e.getKey() + "\" is not an integer id", ex);
                    }
                    if (id < 0) throw new T5TokenizerFileException(cfg, "added_tokens_decoder id " + id + " is negative", null);
                    c.addedTokensDecoder.put(id, token(e.getValue(), cfg, "added_tokens_decoder[" + id + "]", false));
                }
            }
        }
        return c;
    }

    private void applySpecialTokens(JsonNode root, Path file) {
        if (!root.isObject()) throw new T5TokenizerFileException(file, "expected a JSON object", null);
        bosToken = optionalToken(root, "bos_token", file, bosToken);
        eosToken = optionalToken(root, "eos_token", file, eosToken);
        unkToken = optionalToken(root, "unk_token", file, unkToken);
        sepToken = optionalToken(root, "sep_token", file, sepToken);
        padToken = optionalToken(root, "pad_token", file, padToken);
        clsToken = optionalToken(root, "cls_token", file, clsToken);
        maskToken = optionalToken(root, "mask_token", file, maskToken);
        JsonNode add = root.get("additional_special_tokens");
        if (add != null && !add.isNull()) {
            if (!add.isArray()) throw new T5TokenizerFileException(file, "\"additional_special_tokens\" must be a list", null);
            List<AddedToken> list = new ArrayList<>();
            for (int i = 0; i < add.size(); i++) list.add(token(add.get(i), file, "additional_special_tokens[" + i + "]", true));
            additionalSpecialTokens = list;
        }
    }

    private static AddedToken optionalToken(JsonNode root, String key, Path file, AddedToken current) {
        JsonNode n = root.get(key);
        if (n == null) return current;
        if (n.isNull()) return null;
        return token(n, file, key, true);
    }

    /** A token given as a string or as an AddedToken dict ({@code content}, {@code lstrip}, ...). */
    private static AddedToken token(JsonNode n, Path file, String where, boolean specialDefault) {
        if (n.isTextual()) {
            if (n.asText().isEmpty()) throw new T5TokenizerFileException(file, where + " is an empty string", null);
            return new AddedToken(n.asText(), false, false, false, specialDefault);
        }
        if (n.isObject()) {
            JsonNode content = n.get("content");
            if (content == null || !content.isTextual() || content.asText().isEmpty()) {
                throw new T5TokenizerFileException(file, where + " has no non-empty string \"content\"", null);
            }
            return new AddedToken(content.asText(), bool(n, "lstrip", false), bool(n, "rstrip", false),
                    bool(n, "single_word", false), bool(n, "special", specialDefault));
        }
        throw new T5TokenizerFileException(file, where + " must be a string or an object with \"content\"", null);
    }

    private static boolean bool(JsonNode n, String key, boolean dflt) {
        JsonNode v = n.get(key);
        return v == null || v.isNull() ? dflt : v.asBoolean(dflt);
    }

    static JsonNode readJson(Path file) {
        try {
            JsonNode root = new ObjectMapper().readTree(file.toFile());
            if (root == null || root.isMissingNode()) throw new T5TokenizerFileException(file, "empty file, expected JSON", null);
            return root;
        } catch (java.io.FileNotFoundException | java.nio.file.NoSuchFileException e) {
            throw new T5TokenizerFileException(file, "file not found", e);
        } catch (IOException e) {
            throw new T5TokenizerFileException(file, "malformed JSON: " + e.getMessage(), e);
        }
    }

    /** The special tokens in transformers' {@code SPECIAL_TOKENS_ATTRIBUTES} order, then the additional ones. */
    List<AddedToken> specialTokensExtended() {
        List<AddedToken> out = new ArrayList<>();
        for (AddedToken t : new AddedToken[]{bosToken, eosToken, unkToken, sepToken, padToken, clsToken, maskToken}) {
            if (t != null) out.add(t);
        }
        if (additionalSpecialTokens != null) out.addAll(additionalSpecialTokens);
        return out;
    }
}
