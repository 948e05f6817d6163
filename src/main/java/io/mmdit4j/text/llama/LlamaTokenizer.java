package io.mmdit4j.text.llama;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.text.Encoding;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.Objects;

/**
 * A Hugging Face fast tokenizer ({@code tokenizer.json}, e.g. Llama-3's byte-level BPE) run by the Rust {@code tokenizers}
 * library through DJL, called as {@code tokenizer(text, max_length=n, padding="max_length", truncation=True)}: special tokens
 * added by the file's post-processor, truncation by the library (so it knows which tokens are special), padding done here
 * with the tokenizer's own pad id (DJL would pad with id 0) on the configured side.
 *
 * <p>The pad token comes from, in order: the constructor argument, {@code tokenizer_config.json}'s {@code pad_token}, the
 * {@code padding} section of {@code tokenizer.json}. DJL runs offline ({@code ai.djl.offline=true} unless set otherwise): the
 * native library is extracted from its jar, nothing is downloaded.
 */
public final class LlamaTokenizer implements AutoCloseable {
    static {
        if (System.getProperty("ai.djl.offline") == null) System.setProperty("ai.djl.offline", "true");
        // DJL logs through SLF4J; without a binding SLF4J prints a "no providers" warning. Its own no-op provider silences it
        // (only when no binding is on the class path: a real one stays in charge).
        if (System.getProperty("slf4j.provider") == null
                && java.util.ServiceLoader.load(org.slf4j.spi.SLF4JServiceProvider.class).findFirst().isEmpty()) {
            System.setProperty("slf4j.provider", "org.slf4j.helpers.NOP_FallbackServiceProvider");
            if (System.getProperty("slf4j.internal.verbosity") == null) System.setProperty("slf4j.internal.verbosity", "WARN");
        }
    }

    private final Path file;
    private final long padId;
    private final boolean padLeft;
    private final Map<String, Long> addedTokens;
    private final HuggingFaceTokenizer untruncated;
    private final Map<Integer, HuggingFaceTokenizer> truncating = new HashMap<>();
    private int modelMaxLength = Integer.MAX_VALUE;

    private LlamaTokenizer(Path file, long padId, boolean padLeft, Map<String, Long> addedTokens, HuggingFaceTokenizer untruncated) {
        this.file = file;
        this.padId = padId;
        this.padLeft = padLeft;
        this.addedTokens = addedTokens;
        this.untruncated = untruncated;
    }

    /** A transformers tokenizer folder: {@code tokenizer.json} (required) and {@code tokenizer_config.json} (optional). */
    public static LlamaTokenizer fromFolder(Path dir) {
        return fromFolder(dir, false);
    }

    /**
     * As {@link #fromFolder(Path)}; with {@code padWithEos} the pad token is the tokenizer's {@code eos_token} (what
     * {@code HiDreamImagePipeline} sets: {@code tokenizer_4.pad_token = tokenizer_4.eos_token}; Llama-3.1-Instruct's is
     * {@code <|eot_id|>}), whatever the folder says.
     */
    public static LlamaTokenizer fromFolder(Path dir, boolean padWithEos) {
        Objects.requireNonNull(dir, "dir");
        Path json = dir.resolve("tokenizer.json");
        if (!Files.isRegularFile(json)) {
            throw new ModelFormatException(dir + ": no tokenizer.json (expected a Hugging Face fast-tokenizer folder)");
        }
        Path configFile = dir.resolve("tokenizer_config.json");
        JsonNode config = Files.isRegularFile(configFile) ? readJson(configFile) : null;
        String padToken = null;
        boolean padLeft = false;
        if (padWithEos && (config == null || tokenText(config.get("eos_token")) == null)) {
            throw new ModelFormatException(dir + ": no eos_token in tokenizer_config.json (the pad token is the eos token here)");
        }
        if (config != null) {
            padToken = tokenText(config.get(padWithEos ? "eos_token" : "pad_token"));
            String side = config.path("padding_side").asText("right");
            if (!side.equals("right") && !side.equals("left")) {
                throw new ModelFormatException(configFile + ": padding_side must be \"right\" or \"left\", found \"" + side + "\"");
            }
            padLeft = side.equals("left");
        }
        LlamaTokenizer t = open(json, padToken, null, padLeft);
        if (config != null && config.path("model_max_length").canConvertToLong()) {
            t.modelMaxLength = (int) Math.min(Integer.MAX_VALUE, Math.max(1, config.get("model_max_length").asLong()));
        }
        return t;
    }

    /** A special token of tokenizer_config.json: a string or {@code {"content": ...}}; null when absent. */
    private static String tokenText(JsonNode t) {
        if (t != null && t.isTextual()) return t.asText();
        if (t != null && t.isObject() && t.path("content").isTextual()) return t.get("content").asText();
        return null;
    }

    /** {@code model_max_length} of tokenizer_config.json (Llama-3.1: 131072), or {@link Integer#MAX_VALUE} when unset. */
    public int modelMaxLength() {
        return modelMaxLength;
    }

    /** A {@code tokenizer.json} file with an explicit pad id (null: from the file's {@code padding} section), right padding. */
    public static LlamaTokenizer fromFile(Path tokenizerJson, Long padId) {
        Objects.requireNonNull(tokenizerJson, "tokenizerJson");
        if (!Files.isRegularFile(tokenizerJson)) throw new ModelFormatException(tokenizerJson + ": tokenizer file not found");
        return open(tokenizerJson, null, padId, false);
    }

    private static LlamaTokenizer open(Path json, String padToken, Long padId, boolean padLeft) {
        JsonNode root = readJson(json);
        if (!root.path("model").isObject()) {
            throw new ModelFormatException(json + ": not a Hugging Face tokenizer.json: no \"model\" object");
        }
        Map<String, Long> added = new HashMap<>();
        for (JsonNode t : root.path("added_tokens")) {
            if (t.path("content").isTextual() && t.path("id").canConvertToLong()) added.put(t.get("content").asText(), t.get("id").asLong());
        }
        JsonNode vocab = root.path("model").path("vocab");
        Long pad = padId;
        if (pad == null && padToken != null) {
            pad = added.containsKey(padToken) ? added.get(padToken)
                    : vocab.path(padToken).canConvertToLong() ? vocab.get(padToken).asLong() : null;
            if (pad == null) throw new ModelFormatException(json + ": the pad token \"" + padToken + "\" of tokenizer_config.json is not in the vocabulary");
        }
        if (pad == null && root.path("padding").path("pad_id").canConvertToLong()) pad = root.get("padding").get("pad_id").asLong();
        if (pad == null) {
            throw new ModelFormatException(json + ": no pad token (set pad_token in tokenizer_config.json, a padding section in tokenizer.json, "
                    + "or pass a pad id)");
        }
        if (pad < 0) throw new ModelFormatException(json + ": pad id must be >= 0, got " + pad);
        HuggingFaceTokenizer tok = build(json, -1);
        return new LlamaTokenizer(json, pad, padLeft, Map.copyOf(added), tok);
    }

    private static JsonNode readJson(Path file) {
        JsonNode n;
        try {
            n = new ObjectMapper().readTree(Files.readString(file));
        } catch (IOException e) {
            throw new ModelFormatException(file + ": cannot read tokenizer file: " + e.getMessage(), e);
        }
        if (n == null || !n.isObject()) throw new ModelFormatException(file + ": tokenizer file must be a JSON object");
        return n;
    }

    /** A DJL tokenizer that adds special tokens, never pads, and truncates to {@code maxLength} (none when negative). */
    private static HuggingFaceTokenizer build(Path json, int maxLength) {
        HuggingFaceTokenizer.Builder b = HuggingFaceTokenizer.builder().optTokenizerPath(json).optAddSpecialTokens(true).optPadding(false);
        if (maxLength > 0) b.optTruncation(true).optMaxLength(maxLength);
        else b.optTruncation(false);
        try {
            return b.build();
        } catch (IOException | RuntimeException e) {
            throw new ModelFormatException(json + ": the tokenizers library rejected the file: " + firstLine(e), e);
        }
    }

    private static String firstLine(Throwable e) {
        String m = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        int nl = m.indexOf('\n');
        return nl < 0 ? m : m.substring(0, nl);
    }

    public long padId() {
        return padId;
    }

    /** The id of an added (special) token such as {@code <|begin_of_text|>}, or null. */
    public Long addedTokenId(String content) {
        return addedTokens.get(content);
    }

    /** The ids of {@code text} with special tokens, untruncated and unpadded. */
    public long[] ids(String text) {
        Objects.requireNonNull(text, "text");
        synchronized (this) {
            return untruncated.encode(text).getIds();
        }
    }

    /**
     * {@code tokenizer(text, max_length=maxLength, padding="max_length", truncation=True)}: ids and mask of length
     * {@code maxLength}, 1 on real tokens (including special ones), pad id and 0 on padding.
     */
    public Encoding encode(String text, int maxLength) {
        Objects.requireNonNull(text, "text");
        if (maxLength < 1) throw new IllegalArgumentException("maxLength must be >= 1, got " + maxLength);
        long[] full, kept;
        synchronized (this) {
            full = untruncated.encode(text).getIds();
            if (full.length <= maxLength) {
                kept = full;
            } else {
                HuggingFaceTokenizer t = truncating.computeIfAbsent(maxLength, n -> build(file, n));
                kept = t.encode(text).getIds();
            }
        }
        if (kept.length > maxLength) {
            throw new IllegalStateException(file + ": truncation to " + maxLength + " returned " + kept.length + " ids");
        }
        long[] ids = new long[maxLength], mask = new long[maxLength];
        Arrays.fill(ids, padId);
        int start = padLeft ? maxLength - kept.length : 0;
        System.arraycopy(kept, 0, ids, start, kept.length);
        Arrays.fill(mask, start, start + kept.length, 1L);
        return new Encoding(ids, mask, full);
    }

    @Override
    public synchronized void close() {
        untruncated.close();
        truncating.values().forEach(HuggingFaceTokenizer::close);
        truncating.clear();
    }
}
