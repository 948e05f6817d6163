package io.mmdit4j.text.t5;

import java.util.Arrays;

/**
 * A static byte-level trie from UTF-8 keys to non-negative values, with edges in an open-addressing hash table keyed
 * by (node, byte). Walking it byte by byte gives, in order of increasing length, every key that is a prefix of the
 * input, which is what sentencepiece's {@code Darts::DoubleArray::traverse} loop over the piece trie yields.
 */
final class ByteTrie {
    private final long[] keys;   // (node << 8 | byte) + 1, 0 = empty
    private final int[] targets;
    private final int mask;
    private final int[] values;  // per node, -1 = no key ends here
    private final int[] rootChildren = new int[256];

    ByteTrie(byte[][] keyBytes, int[] keyValues) {
        long edges = 0;
        for (byte[] k : keyBytes) edges += k.length;
        int cap = Integer.highestOneBit((int) Math.max(16, Math.min(1L << 29, edges * 2))) << 1;
        long[] tk = new long[cap];
        int[] tt = new int[cap];
        int m = cap - 1;
        int[] vals = new int[(int) Math.min(Integer.MAX_VALUE - 8, edges + 1)];
        Arrays.fill(vals, -1);
        int nodes = 1;
        for (int i = 0; i < keyBytes.length; i++) {
            int node = 0;
            for (byte b : keyBytes[i]) {
                long key = (((long) node << 8) | (b & 0xFF)) + 1;
                int h = mix(key) & m;
                while (tk[h] != 0 && tk[h] != key) h = (h + 1) & m;
                if (tk[h] == 0) {
                    tk[h] = key;
                    tt[h] = nodes++;
                }
                node = tt[h];
            }
            if (vals[node] < 0) vals[node] = keyValues[i];  // first key wins on duplicates
        }
        this.keys = tk;
        this.targets = tt;
        this.mask = m;
        this.values = Arrays.copyOf(vals, nodes);
        for (int c = 0; c < 256; c++) rootChildren[c] = lookup(0, c);
    }

    private static int mix(long key) {
        long h = key * 0x9E3779B97F4A7C15L;
        return (int) (h ^ (h >>> 29));
    }

    private int lookup(int node, int c) {
        long key = (((long) node << 8) | c) + 1;
        int h = mix(key) & mask;
        while (true) {
            long k = keys[h];
            if (k == key) return targets[h];
            if (k == 0) return -1;
            h = (h + 1) & mask;
        }
    }

    /** The child of {@code node} (root = 0) along byte {@code b}, or -1. */
    int child(int node, byte b) {
        int c = b & 0xFF;
        return node == 0 ? rootChildren[c] : lookup(node, c);
    }

    /** The value of the key ending at {@code node}, or -1. */
    int value(int node) {
        return values[node];
    }

    /** Longest key that is a prefix of {@code s[pos..end)}, in bytes; 0 if none. */
    int longestPrefix(byte[] s, int pos, int end) {
        int node = 0, best = 0;
        for (int i = pos; i < end; i++) {
            node = child(node, s[i]);
            if (node < 0) break;
            if (values[node] >= 0) best = i + 1 - pos;
        }
        return best;
    }
}
