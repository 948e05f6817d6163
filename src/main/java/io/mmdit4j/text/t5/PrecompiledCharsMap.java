package io.mmdit4j.text.t5;

import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.BitSet;

/**
 * sentencepiece's precompiled normalisation map ({@code NormalizerSpec.precompiled_charsmap}, e.g. T5's
 * {@code nmt_nfkc}): a Darts-clone double-array trie over UTF-8 byte sequences whose leaf values are offsets into a
 * pool of NUL-terminated replacement strings.
 *
 * <p>Blob layout ({@code Normalizer::DecodePrecompiledCharsMap}): little-endian {@code uint32 trie_blob_size}, then
 * {@code trie_blob_size} bytes of 32-bit little-endian double-array units, then the normalised-string pool (the rest).
 * A unit {@code u} encodes {@code has_leaf = (u >> 8) & 1}, {@code value = u & 0x7fffffff},
 * {@code label = u & 0x800000ff} and {@code offset = (u >> 10) << ((u & 0x200) >> 6)}.
 *
 * <p>{@link #longestPrefix} is {@code Darts::DoubleArray::commonPrefixSearch} (at most 32 results, as
 * {@code Normalizer::NormalizePrefix} requests) followed by the longest-match choice of {@code NormalizePrefix}.
 * The whole reachable trie is checked once when the map is built, so a corrupt blob is reported then (naming the
 * file) instead of reading out of bounds later.
 */
final class PrecompiledCharsMap {
    private static final int MAX_TRIE_RESULTS = 32;

    private final int[] units;
    private final byte[] pool;

    private PrecompiledCharsMap(int[] units, byte[] pool) {
        this.units = units;
        this.pool = pool;
    }

    /** Decodes and checks the blob; {@code file} and {@code what} name the source in error messages. */
    static PrecompiledCharsMap decode(byte[] blob, Path file, String what) {
        if (blob.length <= 4) {
            throw new T5TokenizerFileException(file, what + ": blob for normalization rule is broken ("
                    + blob.length + " bytes)", null);
        }
        long trieSize = (blob[0] & 0xFFL) | (blob[1] & 0xFFL) << 8 | (blob[2] & 0xFFL) << 16 | (blob[3] & 0xFFL) << 24;
        if (trieSize >= blob.length) {
            throw new T5TokenizerFileException(file, what + ": trie data size " + trieSize
                    + " exceeds the input blob size " + blob.length, null);
        }
        int n = (int) (trieSize / 4);
        if (n == 0) throw new T5TokenizerFileException(file, what + ": the double-array trie is empty", null);
        int[] units = new int[n];
        for (int i = 0, p = 4; i < n; i++, p += 4) {
            units[i] = (blob[p] & 0xFF) | (blob[p + 1] & 0xFF) << 8 | (blob[p + 2] & 0xFF) << 16 | (blob[p + 3] & 0xFF) << 24;
        }
        int poolStart = 4 + (int) trieSize;
        byte[] pool = java.util.Arrays.copyOfRange(blob, poolStart, blob.length);
        PrecompiledCharsMap map = new PrecompiledCharsMap(units, pool);
        String problem = map.check();
        if (problem != null) throw new T5TokenizerFileException(file, what + ": corrupt double-array trie: " + problem, null);
        return map;
    }

    private static boolean hasLeaf(int u) {
        return ((u >>> 8) & 1) == 1;
    }

    private static int value(int u) {
        return u & 0x7FFFFFFF;
    }

    private static int label(int u) {
        return u & 0x800000FF;
    }

    private static int offset(int u) {
        return (u >>> 10) << ((u & (1 << 9)) >>> 6);
    }

    /**
     * Walks every node reachable from the root with every byte label and checks that all unit indexes and leaf
     * values are in range and that every leaf's replacement string is NUL-terminated inside the pool.
     * Returns a description of the first problem, or null.
     */
    private String check() {
        int n = units.length;
        BitSet visited = new BitSet(n);
        ArrayDeque<Integer> stack = new ArrayDeque<>();
        int root = offset(units[0]);
        if (root >= n || root < 0) return "root offset " + root + " is outside the " + n + " units";
        stack.push(root);
        visited.set(root);
        while (!stack.isEmpty()) {
            int base = stack.pop();
            for (int c = 0; c < 256; c++) {
                int child = base ^ c;
                if (child >= n) continue;
                int u = units[child];
                if (label(u) != c) continue;
                int next = child ^ offset(u);
                if (next < 0 || next >= n) return "unit " + child + " points to unit " + next + " of " + n;
                if (hasLeaf(u)) {
                    int v = value(units[next]);
                    if (v >= pool.length) return "leaf value " + v + " is outside the " + pool.length + "-byte string pool";
                    if (stringEnd(v) < 0) return "replacement string at " + v + " is not NUL-terminated";
                }
                if (!visited.get(next)) {
                    visited.set(next);
                    stack.push(next);
                }
            }
        }
        return null;
    }

    /** Index of the NUL ending the pool string that starts at {@code v}, or -1. */
    private int stringEnd(int v) {
        for (int i = v; i < pool.length; i++) if (pool[i] == 0) return i;
        return -1;
    }

    /**
     * Longest normalisation rule matching a prefix of {@code key[pos..end)}: returns its length in bytes (0 when
     * nothing matches) and stores the replacement's pool offset in {@code valueOut[0]}.
     */
    int longestPrefix(byte[] key, int pos, int end, int[] valueOut) {
        int n = units.length;
        int nodePos = offset(units[0]);
        int results = 0;
        int longest = 0;
        for (int i = pos; i < end; i++) {
            int c = key[i] & 0xFF;
            nodePos ^= c;
            if (nodePos < 0 || nodePos >= n) break;
            int u = units[nodePos];
            if (label(u) != c) break;
            nodePos ^= offset(u);
            if (nodePos < 0 || nodePos >= n) break;
            if (hasLeaf(u)) {
                if (results < MAX_TRIE_RESULTS) {
                    longest = i + 1 - pos;
                    valueOut[0] = value(units[nodePos]);
                }
                results++;
            }
        }
        return longest;
    }

    /** The pool bytes of the replacement starting at {@code value}: start index is {@code value}, end exclusive returned. */
    int replacementEnd(int value) {
        int e = stringEnd(value);
        return e < 0 ? pool.length : e;
    }

    byte[] pool() {
        return pool;
    }
}
