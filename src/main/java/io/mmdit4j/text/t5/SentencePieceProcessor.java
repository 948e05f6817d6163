package io.mmdit4j.text.t5;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A port of what {@code sentencepiece.SentencePieceProcessor.encode(text, out_type=str)} does in sentencepiece 0.1.97
 * for a unigram model:
 * <ol>
 *   <li>{@code Normalizer::Normalize}: user-defined symbols pass through untouched (longest match); otherwise the
 *       longest rule of the precompiled charsmap replaces a prefix (or one UTF-8 character is copied);
 *       {@code remove_extra_whitespaces} drops leading spaces, collapses runs and drops trailing ones;
 *       {@code add_dummy_prefix} puts one space in front; {@code escape_whitespaces} writes spaces as U+2581.</li>
 *   <li>{@code unigram::Model::EncodeOptimized}: Viterbi over the bytes, every piece (NORMAL, USER_DEFINED;
 *       UNUSED pieces are in the trie but skipped) that starts at a character boundary competes; user-defined pieces
 *       score {@code length * max_score - 0.1}; a character with no single-character piece gets an unknown node
 *       scored {@code min_score - 10}. The arithmetic types (float scores, a double sum for pieces, a float sum for
 *       unknowns, strict {@code >} so the first candidate wins ties) are those of the C++ code.</li>
 *   <li>{@code PopulateSentencePieceText}: consecutive unknown pieces merge into one; the piece string of an unknown
 *       is its normalised text; with {@code byte_fallback} an unknown becomes {@code <0xXX>} byte pieces instead.</li>
 * </ol>
 * Immutable and thread-safe.
 */
final class SentencePieceProcessor {
    private static final float UNK_PENALTY = 10.0f;
    private static final byte[] SPACE_SYMBOL = "\u2581".getBytes(StandardCharsets.UTF_8);
    private static final byte[] REPLACEMENT_CHAR = "\uFFFD".getBytes(StandardCharsets.UTF_8);
    private static final byte[] ONE_CHAR_LEN = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};

    /** Pieces and ids of one encoding. */
    record Result(List<String> pieces, List<Integer> ids) {}

    final SentencePieceModel model;
    private final PrecompiledCharsMap charsMap;   // null = identity
    private final ByteTrie userDefined;           // null when there are none
    private final ByteTrie pieceTrie;
    private final Map<String, Integer> normalPieces = new HashMap<>();    // pieces_ (NORMAL, USER_DEFINED, UNUSED)
    private final Map<String, Integer> reservedPieces = new HashMap<>();  // reserved_id_map_ (CONTROL, UNKNOWN, BYTE)
    private final float minScore, maxScore;
    private final int unkId;

    SentencePieceProcessor(SentencePieceModel model) {
        this.model = model;
        this.charsMap = model.precompiledCharsmap.length == 0 ? null
                : PrecompiledCharsMap.decode(model.precompiledCharsmap, model.source, "normalizer_spec.precompiled_charsmap");
        int unk = -1;
        float min = Float.MAX_VALUE, max = Float.MIN_VALUE;  // FLT_MAX / FLT_MIN as in unigram::Model::Model
        List<byte[]> trieKeys = new ArrayList<>();
        List<Integer> trieIds = new ArrayList<>();
        List<byte[]> udKeys = new ArrayList<>();
        for (int i = 0; i < model.size(); i++) {
            int type = model.types[i];
            boolean normal = type == SentencePieceModel.NORMAL || type == SentencePieceModel.USER_DEFINED
                    || type == SentencePieceModel.UNUSED;
            (normal ? normalPieces : reservedPieces).putIfAbsent(model.pieces[i], i);
            if (normal) {
                trieKeys.add(model.pieces[i].getBytes(StandardCharsets.UTF_8));
                trieIds.add(i);
            }
            if (type == SentencePieceModel.USER_DEFINED) udKeys.add(model.pieces[i].getBytes(StandardCharsets.UTF_8));
            if (type == SentencePieceModel.UNKNOWN) unk = i;
            if (type == SentencePieceModel.NORMAL) {
                min = Math.min(min, model.scores[i]);
                max = Math.max(max, model.scores[i]);
            }
        }
        this.unkId = unk;
        this.minScore = min;
        this.maxScore = max;
        int[] ids = trieIds.stream().mapToInt(Integer::intValue).toArray();
        this.pieceTrie = new ByteTrie(trieKeys.toArray(new byte[0][]), ids);
        this.userDefined = udKeys.isEmpty() ? null : new ByteTrie(udKeys.toArray(new byte[0][]), new int[udKeys.size()]);
    }

    int unkId() {
        return unkId;
    }

    int pieceSize() {
        return model.size();
    }

    /** {@code SentencePieceProcessor::PieceToId}: reserved pieces first, then normal ones, else the unk id. */
    int pieceToId(String piece) {
        Integer id = reservedPieces.get(piece);
        if (id != null) return id;
        id = normalPieces.get(piece);
        return id != null ? id : unkId;
    }

    String idToPiece(int id) {
        return model.pieces[id];
    }

    /** Encodes text (valid UTF-16; callers replace lone surrogates first) to pieces and ids. */
    Result encode(String text) {
        byte[] norm = normalize(text.getBytes(StandardCharsets.UTF_8));
        return populate(norm, viterbi(norm));
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Normalizer

    private static final class Bytes {
        byte[] a = new byte[64];
        int n;

        void add(byte b) {
            if (n == a.length) a = java.util.Arrays.copyOf(a, Math.max(16, a.length * 2));
            a[n++] = b;
        }

        void add(byte[] src, int off, int len) {
            if (n + len > a.length) a = java.util.Arrays.copyOf(a, Math.max(n + len, a.length * 2));
            System.arraycopy(src, off, a, n, len);
            n += len;
        }

        boolean endsWith(byte[] s) {
            if (n < s.length) return false;
            for (int i = 0; i < s.length; i++) if (a[n - s.length + i] != s[i]) return false;
            return true;
        }
    }

    /** Output of {@code NormalizePrefix}: replacement {@code src[off..off+len)} for {@code consumed} input bytes. */
    private static final class Prefix {
        byte[] src;
        int off, len, consumed;
    }

    private void normalizePrefix(byte[] in, int pos, Prefix out, int[] value) {
        int n = in.length;
        if (userDefined != null) {
            int m = userDefined.longestPrefix(in, pos, n);
            if (m > 0) {
                out.src = in;
                out.off = pos;
                out.len = m;
                out.consumed = m;
                return;
            }
        }
        int longest = 0;
        if (charsMap != null) longest = charsMap.longestPrefix(in, pos, n, value);
        if (longest == 0) {
            int len = validUtf8Length(in, pos, n);
            if (len <= 0) {  // malformed UTF-8: emit U+FFFD, consume one byte
                out.src = REPLACEMENT_CHAR;
                out.off = 0;
                out.len = REPLACEMENT_CHAR.length;
                out.consumed = 1;
            } else {
                out.src = in;
                out.off = pos;
                out.len = len;
                out.consumed = len;
            }
        } else {
            out.src = charsMap.pool();
            out.off = value[0];
            out.len = charsMap.replacementEnd(value[0]) - value[0];
            out.consumed = longest;
        }
    }

    /** Length of the valid UTF-8 character at {@code pos} ({@code string_util::IsValidDecodeUTF8}), or 0. */
    private static int validUtf8Length(byte[] s, int pos, int end) {
        int b0 = s[pos] & 0xFF;
        if (b0 < 0x80) return 1;
        int len, cp;
        if (b0 >= 0xC2 && b0 <= 0xDF) {
            len = 2;
            cp = b0 & 0x1F;
        } else if (b0 >= 0xE0 && b0 <= 0xEF) {
            len = 3;
            cp = b0 & 0x0F;
        } else if (b0 >= 0xF0 && b0 <= 0xF4) {
            len = 4;
            cp = b0 & 0x07;
        } else {
            return 0;
        }
        if (pos + len > end) return 0;
        for (int i = 1; i < len; i++) {
            int b = s[pos + i] & 0xFF;
            if ((b & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (b & 0x3F);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
        if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
        return len;
    }

    private static boolean isSingleSpace(Prefix p) {
        return p.len == 1 && p.src[p.off] == ' ';
    }

    /** {@code Normalizer::Normalize}. */
    byte[] normalize(byte[] in) {
        int n = in.length;
        if (n == 0) return new byte[0];
        boolean removeExtra = model.removeExtraWhitespaces;
        boolean escape = model.escapeWhitespaces;
        Prefix p = new Prefix();
        int[] value = new int[1];
        int pos = 0;
        if (removeExtra) {  // ignores heading spaces
            while (pos < n) {
                normalizePrefix(in, pos, p, value);
                if (!isSingleSpace(p)) break;
                pos += p.consumed;
            }
        }
        if (pos >= n) return new byte[0];
        Bytes out = new Bytes();
        out.a = new byte[Math.max(16, (n - pos) * 3 / 2 + 4)];
        boolean suffix = model.treatWhitespaceAsSuffix;
        if (!suffix && model.addDummyPrefix) addWs(out, escape);
        boolean isPrevSpace = removeExtra;
        while (pos < n) {
            normalizePrefix(in, pos, p, value);
            int off = p.off, len = p.len;
            while (isPrevSpace && len > 0 && p.src[off] == ' ') {
                off++;
                len--;
            }
            if (len > 0) {
                for (int i = 0; i < len; i++) {
                    byte b = p.src[off + i];
                    if (escape && b == ' ') out.add(SPACE_SYMBOL, 0, SPACE_SYMBOL.length);
                    else out.add(b);
                }
                isPrevSpace = p.src[off + len - 1] == ' ';
            }
            pos += p.consumed;
            if (!removeExtra) isPrevSpace = false;
        }
        if (removeExtra) {  // ignores trailing spaces
            byte[] space = escape ? SPACE_SYMBOL : new byte[]{' '};
            while (out.endsWith(space)) out.n -= space.length;
        }
        if (suffix && model.addDummyPrefix) addWs(out, escape);
        return java.util.Arrays.copyOf(out.a, out.n);
    }

    private static void addWs(Bytes out, boolean escape) {
        if (escape) out.add(SPACE_SYMBOL, 0, SPACE_SYMBOL.length);
        else out.add((byte) ' ');
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Viterbi (unigram::Model::EncodeOptimized)

    /** Returns the best path as (start, end, id) triples flattened, in text order. */
    int[] viterbi(byte[] s) {
        int size = s.length;
        if (size == 0) return new int[0];
        float unkScore = minScore - UNK_PENALTY;
        float[] best = new float[size + 1];
        int[] startsAt = new int[size + 1];
        int[] ids = new int[size + 1];
        java.util.Arrays.fill(startsAt, -1);
        java.util.Arrays.fill(ids, -1);
        int start = 0;
        while (start < size) {
            float tillHere = best[start];
            boolean hasSingleNode = false;
            int mblen = Math.min(ONE_CHAR_LEN[(s[start] & 0xFF) >>> 4], size - start);
            int node = 0;
            for (int keyPos = start; keyPos < size; ) {
                node = pieceTrie.child(node, s[keyPos]);
                if (node < 0) break;
                keyPos++;
                int ret = pieceTrie.value(node);
                if (ret < 0) continue;
                int type = model.types[ret];
                if (type == SentencePieceModel.UNUSED) continue;
                int length = keyPos - start;
                double score = type == SentencePieceModel.USER_DEFINED
                        ? (double) ((float) length * maxScore) - 0.1
                        : (double) model.scores[ret];
                double candidate = score + (double) tillHere;
                if (startsAt[keyPos] == -1 || candidate > (double) best[keyPos]) {
                    best[keyPos] = (float) candidate;
                    startsAt[keyPos] = start;
                    ids[keyPos] = ret;
                }
                if (!hasSingleNode && length == mblen) hasSingleNode = true;
            }
            if (!hasSingleNode) {
                int target = start + mblen;
                float candidate = unkScore + tillHere;
                if (startsAt[target] == -1 || candidate > best[target]) {
                    best[target] = candidate;
                    startsAt[target] = start;
                    ids[target] = unkId;
                }
            }
            start += mblen;
        }
        int count = 0;
        for (int end = size; end > 0; end = startsAt[end]) count++;
        int[] out = new int[count * 3];
        int k = count;
        for (int end = size; end > 0; end = startsAt[end]) {
            k--;
            out[3 * k] = startsAt[end];
            out[3 * k + 1] = end;
            out[3 * k + 2] = ids[end];
        }
        return out;
    }

    // ---------------------------------------------------------------------------------------------------------------
    // PopulateSentencePieceText

    private Result populate(byte[] norm, int[] path) {
        List<String> pieces = new ArrayList<>(path.length / 3);
        List<Integer> ids = new ArrayList<>(path.length / 3);
        boolean prevUnk = false;
        int pendingStart = -1, pendingEnd = -1;  // a run of unknown pieces being merged, not yet emitted
        for (int k = 0; k < path.length; k += 3) {
            int b = path[k], e = path[k + 1], id = path[k + 2];
            boolean unk = model.types[id] == SentencePieceModel.UNKNOWN;
            if (unk && model.byteFallback) {
                for (int i = b; i < e; i++) {
                    String piece = String.format("<0x%02X>", norm[i] & 0xFF);
                    pieces.add(piece);
                    ids.add(pieceToId(piece));
                }
            } else if (prevUnk && unk) {
                pendingEnd = e;  // merges continuous runs of unknown pieces
            } else {
                if (pendingStart >= 0) {
                    pieces.add(new String(norm, pendingStart, pendingEnd - pendingStart, StandardCharsets.UTF_8));
                    ids.add(unkId);
                    pendingStart = -1;
                }
                if (unk) {
                    pendingStart = b;
                    pendingEnd = e;
                } else {
                    pieces.add(new String(norm, b, e - b, StandardCharsets.UTF_8));
                    ids.add(id);
                }
            }
            prevUnk = unk;
        }
        if (pendingStart >= 0) {
            pieces.add(new String(norm, pendingStart, pendingEnd - pendingStart, StandardCharsets.UTF_8));
            ids.add(unkId);
        }
        return new Result(pieces, ids);
    }
}
