package io.mmdit4j.text.t5;

import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The sentencepiece layer on small hand-built models that exercise what T5's model does not: user-defined pieces
 * (matched whole, even inside words), UNUSED pieces (skipped, so their text is unknown), byte fallback,
 * {@code add_dummy_prefix=false}, {@code remove_extra_whitespaces=false}, {@code escape_whitespaces=false} with
 * {@code treat_whitespace_as_suffix}. Expected pieces/ids were produced by sentencepiece 0.1.97's Python binding
 * ({@code SentencePieceProcessor(model_proto=...).encode(text, out_type=str)} and {@code encode(text)}) on the
 * identical protobuf bytes.
 */
class T5TokenizerSentencePieceTest {
    static final Path SRC = Path.of("synthetic.model");

    static SentencePieceProcessor processor(SpmModelBuilder b) {
        return new SentencePieceProcessor(SentencePieceModel.parse(b.build(), SRC));
    }

    static void check(SentencePieceProcessor sp, String text, List<String> pieces, List<Integer> ids) {
        SentencePieceProcessor.Result r = sp.encode(text);
        assertEquals(pieces, r.pieces(), "pieces of \"" + text + "\"");
        assertEquals(ids, r.ids(), "ids of \"" + text + "\"");
    }

    @Test
    void defaultsUserDefinedAndUnused() {
        SentencePieceProcessor sp = processor(SpmModelBuilder.base());
        check(sp, "ab abc", List.of("▁ab", "▁", "abc"), List.of(7, 3, 10));
        check(sp, "a<sep>b", List.of("▁a", "<sep>", "b"), List.of(11, 8, 5));
        check(sp, "x y  z", List.of("▁", "x", "▁", "y", "▁", "z"), List.of(3, 0, 3, 0, 3, 0));
        check(sp, "  ab  ", List.of("▁ab"), List.of(7));
        check(sp, "cab", List.of("▁", "c", "ab"), List.of(3, 0, 6));
        check(sp, "<sep><sep>", List.of("▁", "<sep>", "<sep>"), List.of(3, 8, 8));
        check(sp, "ab<sep> ab", List.of("▁ab", "<sep>", "▁ab"), List.of(7, 8, 7));
        check(sp, "xyz ab", List.of("▁", "xyz", "▁ab"), List.of(3, 0, 7));
        check(sp, "bab", List.of("▁", "b", "ab"), List.of(3, 5, 6));
        check(sp, "", List.of(), List.of());
        check(sp, "   ", List.of(), List.of());
        check(sp, "aé日b", List.of("▁a", "é日", "b"), List.of(11, 0, 5));
    }

    @Test
    void byteFallback() {
        SpmModelBuilder b = SpmModelBuilder.base().bytePieces();
        b.byteFallback = true;
        SentencePieceProcessor sp = processor(b);
        check(sp, "x y  z", List.of("▁", "<0x78>", "▁", "<0x79>", "▁", "<0x7A>"), List.of(3, 133, 3, 134, 3, 135));
        check(sp, "cab", List.of("▁", "<0x63>", "ab"), List.of(3, 112, 6));
        check(sp, "xyz ab", List.of("▁", "<0x78>", "<0x79>", "<0x7A>", "▁ab"), List.of(3, 133, 134, 135, 7));
        check(sp, "aé日b", List.of("▁a", "<0xC3>", "<0xA9>", "<0xE6>", "<0x97>", "<0xA5>", "b"),
                List.of(11, 208, 182, 243, 164, 178, 5));
        check(sp, "ab<sep> ab", List.of("▁ab", "<sep>", "▁ab"), List.of(7, 8, 7));
    }

    @Test
    void noDummyPrefixNoWhitespaceCleanup() {
        SpmModelBuilder b = SpmModelBuilder.base();
        b.addDummyPrefix = false;
        b.removeExtraWhitespaces = false;
        SentencePieceProcessor sp = processor(b);
        check(sp, "ab abc", List.of("ab", "▁", "abc"), List.of(6, 3, 10));
        check(sp, "x y  z", List.of("x", "▁", "y", "▁", "▁", "z"), List.of(0, 3, 0, 3, 3, 0));
        check(sp, "  ab  ", List.of("▁", "▁ab", "▁", "▁"), List.of(3, 7, 3, 3));
        check(sp, "   ", List.of("▁", "▁", "▁"), List.of(3, 3, 3));
        check(sp, "cab", List.of("c", "ab"), List.of(0, 6));
        check(sp, "aé日b", List.of("a", "é日", "b"), List.of(4, 0, 5));
    }

    @Test
    void unescapedWhitespaceAsSuffix() {
        SpmModelBuilder b = SpmModelBuilder.base();
        b.escapeWhitespaces = false;
        b.treatWhitespaceAsSuffix = true;
        SentencePieceProcessor sp = processor(b);
        check(sp, "ab abc", List.of("ab", " ", "abc", " "), List.of(6, 0, 10, 0));
        check(sp, "x y  z", List.of("x y z "), List.of(0));
        check(sp, "  ab  ", List.of("ab", " "), List.of(6, 0));
        check(sp, "ab<sep> ab", List.of("ab", "<sep>", " ", "ab", " "), List.of(6, 8, 0, 6, 0));
        check(sp, "xyz ab", List.of("xyz ", "ab", " "), List.of(0, 6, 0));
        check(sp, "   ", List.of(), List.of());
    }
}
