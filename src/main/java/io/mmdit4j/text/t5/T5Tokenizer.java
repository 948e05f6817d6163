package io.mmdit4j.text.t5;

import io.mmdit4j.text.Encoding;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * An exact port of transformers 4.38.0's slow {@code T5Tokenizer} over sentencepiece 0.1.97 (unigram), as
 * {@code FluxPipeline} ({@code tokenizer_2}, {@code legacy=False}) and {@code StableDiffusion3Pipeline}
 * ({@code tokenizer_3}, {@code legacy=True}) call it: {@code tokenizer(prompt, padding="max_length",
 * max_length=L, truncation=True)}.
 *
 * <h2>Layers</h2>
 * <ol>
 *   <li><b>Added tokens</b> ({@code PreTrainedTokenizer.tokenize}): {@code </s>}, {@code <pad>}, {@code <unk>},
 *       {@code <extra_id_0..99>} (and any other added token) typed in the prompt are cut out by a port of
 *       transformers' {@code Trie.split}; a token with {@code rstrip}/{@code lstrip} (per
 *       {@code added_tokens_decoder}; SD3's sentinels have both) eats the Python-whitespace on that side of its
 *       neighbours. Each remaining chunk goes through {@code _tokenize}.</li>
 *   <li><b>legacy=False</b> ({@code T5Tokenizer.tokenize}/{@code _tokenize}): the text becomes
 *       {@code "▁" + text.replace("▁", " ")}; sentencepiece runs with {@code add_dummy_prefix=False}; a chunk
 *       starting with "▁" or " " is encoded as {@code "<unk>" + chunk} and the pieces of {@code "<unk>"} are dropped
 *       (so the chunk keeps its leading "▁" but no dummy prefix is added after special tokens); a leading lone "▁"
 *       before a special token is removed. <b>legacy=True</b>: each chunk is encoded by sentencepiece as is
 *       (with the dummy prefix).</li>
 *   <li><b>sentencepiece</b> ({@link SentencePieceProcessor}): precompiled-charsmap normalisation, whitespace
 *       handling and unigram Viterbi, exactly as sentencepiece 0.1.97.</li>
 *   <li><b>ids</b>: added tokens map to their ids, other pieces through {@code piece_to_id} (unknown text → 2).
 *       Truncation keeps the first {@code L-1} ids; {@code </s>} (1) is appended unless the ids already end with
 *       it ({@code _add_eos_if_not_present}); right padding with 0; mask 1 on every real id.</li>
 * </ol>
 *
 * <h2>Choices where Python has no answer</h2>
 * <ul>
 *   <li>Lone UTF-16 surrogates (which a Java string can hold, and on which sentencepiece's Python binding raises
 *       {@code UnicodeEncodeError}) are replaced by U+FFFD before anything else; T5's {@code nmt_nfkc} charsmap
 *       then turns U+FFFD into a space, so "a", a lone high surrogate, "b" encodes like {@code "a b"}.</li>
 *   <li>A {@code null} prompt or {@code maxLength < 2} is an {@link IllegalArgumentException}.</li>
 *   <li>Every prompt is tokenised in full (no early stop): {@link Encoding#untruncatedIds()} is complete. Work is
 *       linear in the prompt length (a 1 MB prompt takes well under a second).</li>
 * </ul>
 * Instances are immutable and thread-safe.
 */
public final class T5Tokenizer {
    static final String SPIECE_UNDERLINE = "\u2581";

    private final Path source;
    private final SentencePieceProcessor sp;
    private final boolean legacy;
    private final Map<String, Integer> addedEncoder;                       // content -> id
    private final Map<Integer, TokenizerConfig.AddedToken> addedDecoder;   // id -> token
    private final Set<String> allSpecialTokens;
    private final AddedTokensTrie trie = new AddedTokensTrie();
    private final String unkToken;
    private final int unkTokenLength;
    private final long eosId;
    private final long padId;
    private final int vocabSize;

    private T5Tokenizer(Path source, SentencePieceModel model, boolean legacy, TokenizerConfig cfg,
                        Map<Integer, TokenizerConfig.AddedToken> fixedAddedTokens) {
        this.source = source;
        this.legacy = legacy;
        // get_spm_processor: legacy=False loads the model with normalizer_spec.add_dummy_prefix = False.
        this.sp = new SentencePieceProcessor(legacy ? model : model.withAddDummyPrefix(false));

        Map<Integer, TokenizerConfig.AddedToken> decoder = new LinkedHashMap<>();
        List<TokenizerConfig.AddedToken> additional = cfg.additionalSpecialTokens == null ? null
                : new ArrayList<>(cfg.additionalSpecialTokens);
        if (fixedAddedTokens != null) {
            decoder.putAll(fixedAddedTokens);  // tokenizer.json: ids as written
        } else {
            // T5Tokenizer.__init__: the sentinels, ids len(sp_model) - 1 + extra_ids - i, lstrip=rstrip=True.
            int extraIds = cfg.extraIds;
            int nExtra;
            if (additional != null) {
                long n = additional.stream().filter(t -> t.content().contains("<extra_id_")).count();
                if (n < 1) {
                    for (int i = 0; i < extraIds; i++) additional.add(TokenizerConfig.AddedToken.special("<extra_id_" + i + ">"));
                } else if (extraIds > 0 && extraIds != n) {
                    throw new T5TokenizerFileException(cfg.file, "both extra_ids (" + extraIds + ") and "
                            + "additional_special_tokens are given but the latter has " + n + " <extra_id_N> tokens", null);
                }
                nExtra = (int) n;
            } else {
                additional = new ArrayList<>();
                for (int i = 0; i < extraIds; i++) additional.add(TokenizerConfig.AddedToken.special("<extra_id_" + i + ">"));
                nExtra = extraIds;
            }
            for (int i = 0; i < nExtra; i++) {
                decoder.put(model.size() - 1 + extraIds - i,
                        new TokenizerConfig.AddedToken("<extra_id_" + i + ">", true, true, false, true));
            }
        }
        // PreTrainedTokenizer.__init__: added_tokens_decoder from the config overrides.
        decoder.putAll(cfg.addedTokensDecoder);
        Map<String, Integer> encoder = new HashMap<>();
        for (var e : decoder.entrySet()) encoder.put(e.getValue().content(), e.getKey());

        // _add_tokens(all_special_tokens_extended not yet added, special_tokens=True).
        List<TokenizerConfig.AddedToken> specials = new ArrayList<>();
        for (TokenizerConfig.AddedToken t : new TokenizerConfig.AddedToken[]{cfg.bosToken, cfg.eosToken, cfg.unkToken,
                cfg.sepToken, cfg.padToken, cfg.clsToken, cfg.maskToken}) {
            if (t != null) specials.add(t);
        }
        if (additional != null) specials.addAll(additional);
        else if (fixedAddedTokens != null) {
            for (TokenizerConfig.AddedToken t : fixedAddedTokens.values()) if (t.special()) specials.add(t);
        }
        Map<String, Integer> currentVocab = new HashMap<>();
        for (int i = 0; i < model.size(); i++) currentVocab.put(model.pieces[i], i);
        currentVocab.putAll(encoder);
        int newIdx = currentVocab.size();
        int addedCount = 0;
        Set<String> all = new HashSet<>();
        for (TokenizerConfig.AddedToken t : specials) {
            all.add(t.content());
            if (encoder.containsKey(t.content())) continue;
            int id;
            Integer existing = currentVocab.get(t.content());
            if (existing != null) {
                id = existing;
            } else {
                id = newIdx + addedCount++;
                currentVocab.put(t.content(), id);
            }
            TokenizerConfig.AddedToken tok = new TokenizerConfig.AddedToken(t.content(), t.lstrip(), t.rstrip(),
                    t.singleWord(), true);
            decoder.put(id, tok);
            encoder.put(t.content(), id);
        }
        this.addedDecoder = Collections.unmodifiableMap(decoder);
        this.addedEncoder = Collections.unmodifiableMap(encoder);
        this.allSpecialTokens = Collections.unmodifiableSet(all);
        for (TokenizerConfig.AddedToken t : decoder.values()) trie.add(t.content());

        if (cfg.eosToken == null) throw new T5TokenizerFileException(cfg.file, "no eos_token", null);
        if (cfg.padToken == null) throw new T5TokenizerFileException(cfg.file, "no pad_token", null);
        this.unkToken = cfg.unkToken == null ? "<unk>" : cfg.unkToken.content();
        this.eosId = convertTokenToId(cfg.eosToken.content());
        this.padId = convertTokenToId(cfg.padToken.content());
        this.unkTokenLength = sp.encode(unkToken).pieces().size();
        int maxId = model.size() - 1;
        for (int id : decoder.keySet()) maxId = Math.max(maxId, id);
        this.vocabSize = maxId + 1;
    }

    /**
     * Loads a tokenizer folder: {@code spiece.model} plus, when present, {@code tokenizer_config.json} (legacy,
     * added tokens and their lstrip/rstrip) and {@code special_tokens_map.json}; without {@code spiece.model}, a
     * fast-tokenizer {@code tokenizer.json} (see {@link #fromTokenizerJson}). A missing {@code legacy} means
     * {@code True}, as in transformers (for {@code tokenizer.json}, {@code prepend_scheme "first"} means False).
     */
    public static T5Tokenizer fromFolder(Path dir) {
        if (dir == null) throw new IllegalArgumentException("tokenizer folder is null");
        if (!Files.isDirectory(dir)) throw new T5TokenizerFileException(dir, "not a directory", null);
        TokenizerConfig cfg = TokenizerConfig.read(dir);
        Path spiece = dir.resolve("spiece.model");
        if (Files.exists(spiece)) {
            SentencePieceModel model = SentencePieceModel.read(spiece);
            return new T5Tokenizer(spiece, model, cfg.legacy == null || cfg.legacy, cfg, null);
        }
        Path json = dir.resolve("tokenizer.json");
        if (Files.exists(json)) {
            TokenizerJson tj = TokenizerJson.read(json);
            boolean legacy = cfg.legacy != null ? cfg.legacy : tj.legacyHint == null || tj.legacyHint;
            return new T5Tokenizer(json, tj.model, legacy, cfg, tj.addedTokens);
        }
        throw new T5TokenizerFileException(dir, "neither spiece.model nor tokenizer.json found", null);
    }

    /**
     * Loads {@code spiece.model} with transformers' defaults: {@code </s>}, {@code <unk>}, {@code <pad>} and 100
     * sentinels {@code <extra_id_N>} (ids 32099..32000 for T5; lstrip/rstrip True).
     */
    public static T5Tokenizer fromSpiece(Path spieceModel, boolean legacy) {
        if (spieceModel == null) throw new IllegalArgumentException("spiece.model path is null");
        SentencePieceModel model = SentencePieceModel.read(spieceModel);
        return new T5Tokenizer(spieceModel, model, legacy, TokenizerConfig.defaults(spieceModel), null);
    }

    /** Loads a fast-tokenizer {@code tokenizer.json} (Unigram model) with the given legacy mode. */
    public static T5Tokenizer fromTokenizerJson(Path tokenizerJson, boolean legacy) {
        if (tokenizerJson == null) throw new IllegalArgumentException("tokenizer.json path is null");
        TokenizerJson tj = TokenizerJson.read(tokenizerJson);
        return new T5Tokenizer(tokenizerJson, tj.model, legacy, TokenizerConfig.defaults(tokenizerJson), tj.addedTokens);
    }

    /**
     * {@code tokenizer(prompt, padding="max_length", max_length=maxLength, truncation=True)}: ids and mask of
     * length {@code maxLength} (256 for FLUX schnell / SD3, 512 for FLUX dev); {@link Encoding#untruncatedIds()}
     * holds all ids with {@code </s>}.
     */
    public Encoding encode(String prompt, int maxLength) {
        if (maxLength < 2) throw new IllegalArgumentException("maxLength must be at least 2 (one token and </s>), got " + maxLength);
        List<Integer> ids = convertTokensToIds(tokenize(prompt));
        long[] untruncated = toLongs(addEosIfNotPresent(ids));
        // prepare_for_model: total = len(ids) + num_special_tokens_to_add (1); truncate "longest_first" on the right.
        int total = ids.size() + 1;
        if (total > maxLength) {
            int remove = total - maxLength;
            if (ids.size() > remove) ids = ids.subList(0, ids.size() - remove);
        }
        List<Integer> seq = addEosIfNotPresent(ids);
        long[] out = new long[Math.max(maxLength, seq.size())];
        long[] mask = new long[out.length];
        java.util.Arrays.fill(out, padId);
        for (int i = 0; i < seq.size(); i++) {
            out[i] = seq.get(i);
            mask[i] = 1;
        }
        return new Encoding(out, mask, untruncated);
    }

    /** The tokens of {@code tokenizer.tokenize(prompt)} (pieces and added tokens; no {@code </s>}). */
    public List<String> pieces(String prompt) {
        return Collections.unmodifiableList(tokenize(prompt));
    }

    /**
     * {@code len(tokenizer)}: one more than the largest id this tokenizer can produce (32100 for T5: 32000
     * sentencepiece pieces and 100 sentinels). The T5 encoder's embedding table is larger (32128).
     */
    public int vocabSize() {
        return vocabSize;
    }

    /** Whether this tokenizer uses transformers' legacy behaviour. */
    public boolean legacy() {
        return legacy;
    }

    /** Id of {@code </s>}. */
    public long eosId() {
        return eosId;
    }

    /** Id used for padding ({@code <pad>}). */
    public long padId() {
        return padId;
    }

    /** The file the vocabulary was read from. */
    public Path source() {
        return source;
    }

    // ---------------------------------------------------------------------------------------------------------------

    List<String> tokenize(String text) {
        if (text == null) throw new IllegalArgumentException("prompt is null");
        text = replaceLoneSurrogates(text);
        if (legacy || text.isEmpty()) return baseTokenize(text);
        List<String> tokens = baseTokenize(SPIECE_UNDERLINE + text.replace(SPIECE_UNDERLINE, " "));
        if (tokens.size() > 1 && tokens.get(0).equals(SPIECE_UNDERLINE) && allSpecialTokens.contains(tokens.get(1))) {
            tokens = tokens.subList(1, tokens.size());
        }
        return tokens;
    }

    /** {@code PreTrainedTokenizer.tokenize} (4.38.0) without the T5 override. */
    private List<String> baseTokenize(String text) {
        List<String> tokens = new ArrayList<>(trie.split(text));
        for (int i = 0; i < tokens.size(); i++) {
            String token = tokens.get(i);
            Integer id = addedEncoder.get(token);
            if (id == null) continue;
            TokenizerConfig.AddedToken ext = addedDecoder.get(id);
            String left = i > 0 ? tokens.get(i - 1) : null;
            String right = i < tokens.size() - 1 ? tokens.get(i + 1) : null;
            if (ext.rstrip() && right != null && !right.isEmpty()) tokens.set(i + 1, PyStrings.lstrip(right));
            if (ext.lstrip() && left != null && !left.isEmpty()) tokens.set(i - 1, PyStrings.rstrip(left));
            if (ext.singleWord() && left != null && !left.isEmpty() && !left.endsWith(" ")) {
                tokens.set(i - 1, tokens.get(i - 1) + token);
                tokens.set(i, "");
            } else if (ext.singleWord() && right != null && !right.isEmpty() && !right.startsWith(" ")) {
                tokens.set(i + 1, token + tokens.get(i + 1));
                tokens.set(i, "");
            }
        }
        List<String> out = new ArrayList<>();
        for (String token : tokens) {
            if (token.isEmpty()) continue;
            if (addedEncoder.containsKey(token)) out.add(token);
            else out.addAll(spTokenize(token));
        }
        return out;
    }

    /** {@code T5Tokenizer._tokenize}. */
    private List<String> spTokenize(String text) {
        if (legacy || !(text.startsWith(SPIECE_UNDERLINE) || text.startsWith(" "))) return sp.encode(text).pieces();
        List<String> tokens = sp.encode(unkToken + text).pieces();
        return tokens.size() >= unkTokenLength ? tokens.subList(unkTokenLength, tokens.size()) : tokens;
    }

    private int convertTokenToId(String token) {
        Integer id = addedEncoder.get(token);
        return id != null ? id : sp.pieceToId(token);
    }

    private List<Integer> convertTokensToIds(List<String> tokens) {
        List<Integer> ids = new ArrayList<>(tokens.size() + 1);
        for (String t : tokens) ids.add(convertTokenToId(t));
        return ids;
    }

    /** {@code T5Tokenizer._add_eos_if_not_present}. */
    private List<Integer> addEosIfNotPresent(List<Integer> ids) {
        if (!ids.isEmpty() && ids.get(ids.size() - 1) == eosId) return ids;
        List<Integer> out = new ArrayList<>(ids.size() + 1);
        out.addAll(ids);
        out.add((int) eosId);
        return out;
    }

    private static long[] toLongs(List<Integer> ids) {
        long[] out = new long[ids.size()];
        for (int i = 0; i < out.length; i++) out[i] = ids.get(i);
        return out;
    }

    /** Replaces every unpaired UTF-16 surrogate with U+FFFD. */
    static String replaceLoneSurrogates(String s) {
        int n = s.length();
        StringBuilder sb = null;
        for (int i = 0; i < n; i++) {
            char c = s.charAt(i);
            boolean lone;
            if (Character.isHighSurrogate(c)) {
                if (i + 1 < n && Character.isLowSurrogate(s.charAt(i + 1))) {
                    if (sb != null) sb.append(c).append(s.charAt(i + 1));
                    i++;
                    continue;
                }
                lone = true;
            } else {
                lone = Character.isLowSurrogate(c);
            }
            if (lone && sb == null) {
                sb = new StringBuilder(n);
                sb.append(s, 0, i);
            }
            if (sb != null) sb.append(lone ? '\uFFFD' : c);
        }
        return sb == null ? s : sb.toString();
    }
}
