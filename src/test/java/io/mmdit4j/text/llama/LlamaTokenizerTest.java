package io.mmdit4j.text.llama;

import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.text.Encoding;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static io.mmdit4j.text.llama.TinyLlamaTokenizerJson.*;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link LlamaTokenizer} on a hand-made Llama-3-style byte-level BPE file: exact ids, padding, truncation, file errors. */
class LlamaTokenizerTest {

    private static LlamaTokenizer tokenizer(Path dir, String config) throws IOException {
        TinyLlamaTokenizerJson.write(dir);
        if (config != null) Files.writeString(dir.resolve("tokenizer_config.json"), config);
        return LlamaTokenizer.fromFolder(dir);
    }

    @Test
    void byteLevelBpeIdsWithBosMergesSpecialTokensAndUnicode(@TempDir Path tmp) throws IOException {
        try (LlamaTokenizer t = tokenizer(tmp, "{\"pad_token\": \"<pad>\"}")) {
            assertEquals(PAD, t.padId());
            assertArrayEquals(new long[] {BOS, 'a', G_CAT}, t.ids("a cat"));                          // " cat" is a vocab word (ignore_merges)
            assertArrayEquals(new long[] {BOS, 'c', AT, ' ', 's', AT, '!'}, t.ids("cat sat!"));         // merges inside words, "Ġ" = byte 32
            assertArrayEquals(new long[] {BOS, 'c', 'a', 'f', 0xC3, 0xA9}, t.ids("café"));              // UTF-8 bytes
            assertArrayEquals(new long[] {BOS, START_HEADER, 'u', 's', 'e', 'r', END_HEADER, NEWLINES, BRACES, EOT},
                    t.ids("<|start_header_id|>user<|end_header_id|>\n\n{}<|eot_id|>"));                  // special tokens split out
            assertEquals(EOT, t.addedTokenId("<|eot_id|>"));
        }
    }

    @Test
    void padsWithThePadIdAndTruncatesOnTheRight(@TempDir Path tmp) throws IOException {
        try (LlamaTokenizer t = tokenizer(tmp, "{\"pad_token\": {\"content\": \"<pad>\"}, \"padding_side\": \"right\"}")) {
            Encoding e = t.encode("a cat", 6);
            assertArrayEquals(new long[] {BOS, 'a', G_CAT, PAD, PAD, PAD}, e.ids());
            assertArrayEquals(new long[] {1, 1, 1, 0, 0, 0}, e.attentionMask());
            assertEquals(3, e.length());
            Encoding cut = t.encode("a cat sat", 3);
            assertArrayEquals(new long[] {BOS, 'a', G_CAT}, cut.ids());
            assertArrayEquals(new long[] {1, 1, 1}, cut.attentionMask());
            assertArrayEquals(new long[] {BOS, 'a', G_CAT, ' ', 's', AT}, cut.untruncatedIds());
            assertTrue(cut.truncated());
            assertArrayEquals(new long[] {BOS, 'a', G_CAT}, t.encode("a cat", 3).ids()); // exact fit: no truncation, no padding
            assertArrayEquals(new long[] {BOS, 'a'}, t.encode("a cat sat", 2).ids());    // another length, another truncating instance
            assertThrows(IllegalArgumentException.class, () -> t.encode("a", 0));
        }
    }

    @Test
    void leftPaddingFromTheConfigAndExplicitPadIds(@TempDir Path tmp) throws IOException {
        try (LlamaTokenizer t = tokenizer(tmp.resolve("left"), "{\"pad_token\": \"<pad>\", \"padding_side\": \"left\"}")) {
            Encoding e = t.encode("a cat", 5);
            assertArrayEquals(new long[] {PAD, PAD, BOS, 'a', G_CAT}, e.ids());
            assertArrayEquals(new long[] {0, 0, 1, 1, 1}, e.attentionMask());
        }
        Path file = TinyLlamaTokenizerJson.write(tmp.resolve("file"));
        try (LlamaTokenizer t = LlamaTokenizer.fromFile(file, 7L)) {
            assertArrayEquals(new long[] {BOS, 'a', 7, 7}, t.encode("a", 4).ids());
        }
    }

    @Test
    void paddingAndTruncationSettingsInTheFileAreOverridden(@TempDir Path tmp) throws IOException {
        Path file = TinyLlamaTokenizerJson.write(tmp);
        String json = Files.readString(file)
                .replace("\"truncation\" : null", "\"truncation\" : {\"direction\": \"Right\", \"max_length\": 2, \"strategy\": \"LongestFirst\", \"stride\": 0}")
                .replace("\"padding\" : null", "\"padding\" : {\"strategy\": {\"Fixed\": 9}, \"direction\": \"Left\", \"pad_to_multiple_of\": null, "
                        + "\"pad_id\": 5, \"pad_type_id\": 0, \"pad_token\": \"x\"}");
        assertTrue(json.contains("\"Fixed\""), "the test edits the file");
        Files.writeString(file, json);
        try (LlamaTokenizer t = LlamaTokenizer.fromFile(file, null)) {
            assertEquals(5, t.padId());                                        // the file's pad id when nothing else names one
            assertArrayEquals(new long[] {BOS, 'a', G_CAT, ' ', 's', AT}, t.ids("a cat sat"));
            assertArrayEquals(new long[] {BOS, 'a', G_CAT, 5}, t.encode("a cat", 4).ids());
        }
    }

    @Test
    void clearErrorsForMissingOrBadFiles(@TempDir Path tmp) throws IOException {
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> LlamaTokenizer.fromFolder(tmp.resolve("none")));
        assertTrue(e.getMessage().contains("no tokenizer.json"), e.getMessage());

        Path bad = Files.createDirectories(tmp.resolve("bad"));
        Files.writeString(bad.resolve("tokenizer.json"), "{ not json");
        e = assertThrows(ModelFormatException.class, () -> LlamaTokenizer.fromFolder(bad));
        assertTrue(e.getMessage().contains("tokenizer.json") && e.getMessage().contains("cannot read"), e.getMessage());

        Path noModel = Files.createDirectories(tmp.resolve("nomodel"));
        Files.writeString(noModel.resolve("tokenizer.json"), "{\"version\": \"1.0\"}");
        e = assertThrows(ModelFormatException.class, () -> LlamaTokenizer.fromFolder(noModel));
        assertTrue(e.getMessage().contains("no \"model\""), e.getMessage());

        Path broken = Files.createDirectories(tmp.resolve("broken"));
        Files.writeString(broken.resolve("tokenizer.json"), "{\"model\": {\"type\": \"NoSuchModel\"}, \"padding\": {\"pad_id\": 0}}");
        e = assertThrows(ModelFormatException.class, () -> LlamaTokenizer.fromFolder(broken));
        assertTrue(e.getMessage().contains("rejected the file"), e.getMessage());

        e = assertThrows(ModelFormatException.class, () -> tokenizer(tmp.resolve("nopad"), null));
        assertTrue(e.getMessage().contains("no pad token"), e.getMessage());
        e = assertThrows(ModelFormatException.class, () -> tokenizer(tmp.resolve("unknownpad"), "{\"pad_token\": \"<nope>\"}"));
        assertTrue(e.getMessage().contains("<nope>"), e.getMessage());
        e = assertThrows(ModelFormatException.class, () -> tokenizer(tmp.resolve("side"), "{\"pad_token\": \"<pad>\", \"padding_side\": \"middle\"}"));
        assertTrue(e.getMessage().contains("padding_side"), e.getMessage());
    }
}
