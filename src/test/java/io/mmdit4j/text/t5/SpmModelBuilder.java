package io.mmdit4j.text.t5;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/** Writes small {@code sentencepiece.ModelProto} files by hand, for tests (the wire format mirrors sentencepiece's). */
final class SpmModelBuilder {
    record Piece(String piece, float score, int type) {}

    final List<Piece> pieces = new ArrayList<>();
    int modelType = 1;
    boolean byteFallback, treatWhitespaceAsSuffix;
    boolean addDummyPrefix = true, removeExtraWhitespaces = true, escapeWhitespaces = true;
    byte[] charsmap;  // null = none

    SpmModelBuilder piece(String piece, double score, int type) {
        pieces.add(new Piece(piece, (float) score, type));
        return this;
    }

    SpmModelBuilder piece(String piece, double score) {
        return piece(piece, score, SentencePieceModel.NORMAL);
    }

    /** The pieces of sentencepiece tests' small model used throughout: unk, control, normal, user-defined, unused. */
    static SpmModelBuilder base() {
        return new SpmModelBuilder()
                .piece("<unk>", 0, SentencePieceModel.UNKNOWN)
                .piece("<s>", 0, SentencePieceModel.CONTROL)
                .piece("</s>", 0, SentencePieceModel.CONTROL)
                .piece("\u2581", -1.0).piece("a", -2.0).piece("b", -2.5).piece("ab", -2.0).piece("\u2581ab", -3.0)
                .piece("<sep>", 0, SentencePieceModel.USER_DEFINED)
                .piece("c", -4.0, SentencePieceModel.UNUSED)
                .piece("abc", -1.0).piece("\u2581a", -2.2).piece("ba", -4.5);
    }

    SpmModelBuilder bytePieces() {
        for (int i = 0; i < 256; i++) piece(String.format("<0x%02X>", i), 0, SentencePieceModel.BYTE);
        return this;
    }

    byte[] build() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (Piece p : pieces) {
            ByteArrayOutputStream pb = new ByteArrayOutputStream();
            lengthDelimited(pb, 1, p.piece().getBytes(StandardCharsets.UTF_8));
            tag(pb, 2, 5);
            int bits = Float.floatToIntBits(p.score());
            for (int i = 0; i < 4; i++) pb.write(bits >>> (8 * i));
            if (p.type() != SentencePieceModel.NORMAL) {
                tag(pb, 3, 0);
                varint(pb, p.type());
            }
            lengthDelimited(out, 1, pb.toByteArray());
        }
        ByteArrayOutputStream tr = new ByteArrayOutputStream();
        varintField(tr, 3, modelType);
        varintField(tr, 40, 0);
        varintField(tr, 41, 1);
        varintField(tr, 42, 2);
        varintField(tr, 43, -1);
        if (byteFallback) varintField(tr, 35, 1);
        if (treatWhitespaceAsSuffix) varintField(tr, 24, 1);
        lengthDelimited(out, 2, tr.toByteArray());
        ByteArrayOutputStream nm = new ByteArrayOutputStream();
        lengthDelimited(nm, 1, "identity".getBytes(StandardCharsets.UTF_8));
        if (charsmap != null) lengthDelimited(nm, 2, charsmap);
        varintField(nm, 3, addDummyPrefix ? 1 : 0);
        varintField(nm, 4, removeExtraWhitespaces ? 1 : 0);
        varintField(nm, 5, escapeWhitespaces ? 1 : 0);
        lengthDelimited(out, 3, nm.toByteArray());
        return out.toByteArray();
    }

    static void varint(ByteArrayOutputStream out, long v) {
        while (true) {
            if ((v & ~0x7FL) == 0) {
                out.write((int) v);
                return;
            }
            out.write((int) (v & 0x7F) | 0x80);
            v >>>= 7;
        }
    }

    static void tag(ByteArrayOutputStream out, int field, int wire) {
        varint(out, (long) field << 3 | wire);
    }

    static void varintField(ByteArrayOutputStream out, int field, long v) {
        tag(out, field, 0);
        varint(out, v);
    }

    static void lengthDelimited(ByteArrayOutputStream out, int field, byte[] b) {
        tag(out, field, 2);
        varint(out, b.length);
        out.writeBytes(b);
    }
}
