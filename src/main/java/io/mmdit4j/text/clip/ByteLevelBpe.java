package io.mmdit4j.text.clip;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * CLIP's byte-level BPE ({@code CLIPTokenizer.bpe} / openai {@code SimpleTokenizer.bpe}): a pre-tokenised
 * piece is UTF-8 encoded, each byte mapped through GPT-2's {@code bytes_to_unicode} table, {@code </w>} appended
 * to the last symbol, and then the adjacent pair with the lowest merge rank is merged (all its occurrences, left
 * to right) until no adjacent pair has a rank.
 *
 * <p>The merge loop is exact for words of any length and runs in O(n log n): a heap holds the candidate pairs
 * by (rank, position); each round pops every pair of the current lowest rank in left-to-right order and merges
 * those that are still present, exactly as one pass of the reference loop does, and only then queues the pairs
 * that the merges created. So a single 1 MB "word" costs about a second instead of hours, with the same result.
 *
 * <p>Results are kept in a bounded, thread-safe LRU cache ({@link #CACHE_CAPACITY} words of at most
 * {@link #CACHE_MAX_WORD} characters). Instances are immutable otherwise and safe to share between threads.
 */
final class ByteLevelBpe {
    /** {@code 49152 - 256 - 2}: how many lines of merges.txt (after the header) CLIP uses. */
    static final int MAX_MERGES = 49152 - 256 - 2;
    static final int CACHE_CAPACITY = 20_000;
    static final int CACHE_MAX_WORD = 256;
    static final String END_OF_WORD = "</w>";
    static final String[] SPECIAL_WORDS = {"<|startoftext|>", "<|endoftext|>"};

    /** GPT-2's {@code bytes_to_unicode()}: byte -> printable character. */
    static final char[] BYTE_TO_CHAR = new char[256];
    /** The bytes in {@code bytes_to_unicode()}'s dictionary order (openai's vocabulary order). */
    static final int[] BYTE_ORDER = new int[256];
    /** Whether a char is one of the 256 byte-level characters. */
    private static final boolean[] IS_BYTE_CHAR = new boolean[0x144];

    static {
        boolean[] printable = new boolean[256];
        int k = 0;
        for (int b = '!'; b <= '~'; b++) { printable[b] = true; BYTE_ORDER[k++] = b; }
        for (int b = 0xA1; b <= 0xAC; b++) { printable[b] = true; BYTE_ORDER[k++] = b; }
        for (int b = 0xAE; b <= 0xFF; b++) { printable[b] = true; BYTE_ORDER[k++] = b; }
        int extra = 0;
        for (int b = 0; b < 256; b++) {
            if (printable[b]) {
                BYTE_TO_CHAR[b] = (char) b;
            } else {
                BYTE_TO_CHAR[b] = (char) (256 + extra++);
                BYTE_ORDER[k++] = b;
            }
            IS_BYTE_CHAR[BYTE_TO_CHAR[b]] = true;
        }
    }

    private final Map<String, Integer> symbolIds = new HashMap<>();
    private final List<String> symbols = new ArrayList<>();
    private final LongLongMap merges;
    private final int[] charSymbol = new int[0x144];
    private final int[] charEndSymbol = new int[0x144];
    private final int[] specialSymbols = new int[SPECIAL_WORDS.length];
    private final long[] symbolToken;
    private final Map<String, int[]> cache = new LinkedHashMap<>(1024, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, int[]> eldest) {
            return size() > CACHE_CAPACITY;
        }
    };

    /**
     * @param vocab  token -> id
     * @param merges the merge pairs in rank order (a pair listed twice keeps its last rank, as a Python dict does)
     * @param unkId  the id of tokens missing from {@code vocab}
     */
    ByteLevelBpe(Map<String, Integer> vocab, List<String[]> merges, long unkId) {
        for (int b = 0; b < 256; b++) {
            char c = BYTE_TO_CHAR[b];
            charSymbol[c] = intern(String.valueOf(c));
            charEndSymbol[c] = intern(c + END_OF_WORD);
        }
        for (int i = 0; i < SPECIAL_WORDS.length; i++) specialSymbols[i] = intern(SPECIAL_WORDS[i]);
        this.merges = new LongLongMap(Math.max(16, merges.size() * 2));
        for (int rank = 0; rank < merges.size(); rank++) {
            String[] m = merges.get(rank);
            int a = intern(m[0]), b = intern(m[1]), r = intern(m[0] + m[1]);
            this.merges.put(pairKey(a, b), ((long) rank << 32) | r);
        }
        symbolToken = new long[symbols.size()];
        for (int s = 0; s < symbols.size(); s++) {
            Integer id = vocab.get(symbols.get(s));
            symbolToken[s] = id != null ? id : unkId;
        }
    }

    private int intern(String s) {
        Integer id = symbolIds.get(s);
        if (id != null) return id;
        symbolIds.put(s, symbols.size());
        symbols.add(s);
        return symbols.size() - 1;
    }

    private static long pairKey(int a, int b) {
        return ((long) a << 32) | (b & 0xFFFFFFFFL);
    }

    /** The token string of a symbol returned by {@link #bpe}. */
    String symbol(int s) {
        return symbols.get(s);
    }

    /** The vocabulary id of a symbol returned by {@link #bpe} (the unknown id when it is not in the vocabulary). */
    long tokenId(int s) {
        return symbolToken[s];
    }

    /** Maps a pre-tokenised piece to its byte-level string (lone surrogates encode as U+FFFD, as ftfy leaves them). */
    static String byteEncode(String piece) {
        for (int i = 0; i < piece.length(); i++) {
            char c = piece.charAt(i);
            if (Character.isHighSurrogate(c) && i + 1 < piece.length() && Character.isLowSurrogate(piece.charAt(i + 1))) {
                i++;
            } else if (Character.isSurrogate(c)) {
                piece = TextFixer.fixSurrogates(piece);
                break;
            }
        }
        byte[] utf8 = piece.getBytes(StandardCharsets.UTF_8);
        char[] out = new char[utf8.length];
        for (int i = 0; i < utf8.length; i++) out[i] = BYTE_TO_CHAR[utf8[i] & 0xFF];
        return new String(out);
    }

    /** BPE of a byte-level word: the symbols (see {@link #symbol}, {@link #tokenId}). */
    int[] bpe(String word) {
        for (int i = 0; i < SPECIAL_WORDS.length; i++) {
            if (SPECIAL_WORDS[i].equals(word)) return new int[] {specialSymbols[i]};
        }
        boolean cacheable = word.length() <= CACHE_MAX_WORD;
        if (cacheable) {
            synchronized (cache) {
                int[] hit = cache.get(word);
                if (hit != null) return hit;
            }
        }
        int[] result = merge(word);
        if (cacheable) {
            synchronized (cache) {
                cache.put(word, result);
            }
        }
        return result;
    }

    private int[] merge(String word) {
        int n = word.length();
        if (n == 0) return new int[0];
        int[] sym = new int[n];
        for (int i = 0; i < n; i++) {
            char c = word.charAt(i);
            if (c >= IS_BYTE_CHAR.length || !IS_BYTE_CHAR[c]) {
                throw new IllegalArgumentException("not a byte-level character: U+" + Integer.toHexString(c));
            }
            sym[i] = i == n - 1 ? charEndSymbol[c] : charSymbol[c];
        }
        if (n == 1) return sym;

        int[] next = new int[n];
        int[] prev = new int[n];
        for (int i = 0; i < n; i++) {
            next[i] = i + 1 < n ? i + 1 : -1;
            prev[i] = i - 1;
        }
        boolean[] dead = new boolean[n];
        LongHeap heap = new LongHeap(n);
        for (int i = 0; i + 1 < n; i++) {
            long m = merges.get(pairKey(sym[i], sym[i + 1]));
            if (m != LongLongMap.MISSING) heap.push((m & 0xFFFFFFFF00000000L) | i);
        }
        long[] pending = new long[16];
        while (!heap.isEmpty()) {
            long top = heap.pop();
            long rank = top >>> 32;
            int pendingCount = 0;
            // One pass of the reference loop: every present occurrence of this pair, left to right.
            for (long e = top; ; ) {
                int i = (int) e;
                long m = dead[i] || next[i] < 0 ? LongLongMap.MISSING : merges.get(pairKey(sym[i], sym[next[i]]));
                if (m != LongLongMap.MISSING && (m >>> 32) == rank) {
                    int j = next[i];
                    sym[i] = (int) m;
                    dead[j] = true;
                    next[i] = next[j];
                    if (next[j] >= 0) prev[next[j]] = i;
                    if (pendingCount + 2 > pending.length) pending = Arrays.copyOf(pending, pending.length * 2);
                    if (prev[i] >= 0) pending[pendingCount++] = prev[i];
                    pending[pendingCount++] = i;
                }
                if (heap.isEmpty() || (heap.peek() >>> 32) != rank) break;
                e = heap.pop();
            }
            for (int p = 0; p < pendingCount; p++) {
                int i = (int) pending[p];
                if (dead[i] || next[i] < 0) continue;
                long m = merges.get(pairKey(sym[i], sym[next[i]]));
                if (m != LongLongMap.MISSING) heap.push((m & 0xFFFFFFFF00000000L) | i);
            }
        }
        int count = 0;
        for (int i = 0; i >= 0; i = next[i]) count++;
        int[] out = new int[count];
        int k = 0;
        for (int i = 0; i >= 0; i = next[i]) out[k++] = sym[i];
        return out;
    }

    /** A min-heap of longs. */
    private static final class LongHeap {
        private long[] a;
        private int size;

        LongHeap(int capacity) {
            a = new long[Math.max(16, capacity)];
        }

        boolean isEmpty() {
            return size == 0;
        }

        long peek() {
            return a[0];
        }

        void push(long v) {
            if (size == a.length) a = Arrays.copyOf(a, a.length * 2);
            int i = size++;
            while (i > 0) {
                int p = (i - 1) >>> 1;
                if (a[p] <= v) break;
                a[i] = a[p];
                i = p;
            }
            a[i] = v;
        }

        long pop() {
            long top = a[0];
            long v = a[--size];
            int i = 0;
            int half = size >>> 1;
            while (i < half) {
                int c = 2 * i + 1;
                if (c + 1 < size && a[c + 1] < a[c]) c++;
                if (v <= a[c]) break;
                a[i] = a[c];
                i = c;
            }
            a[i] = v;
            return top;
        }
    }

    /** An open-addressing long -> long map (keys are symbol pairs; values never equal {@link #MISSING}). */
    private static final class LongLongMap {
        static final long MISSING = Long.MIN_VALUE;
        private final long[] keys;
        private final long[] values;
        private final boolean[] used;
        private final int mask;

        LongLongMap(int expected) {
            int cap = Integer.highestOneBit(Math.max(4, expected) * 2);
            keys = new long[cap];
            values = new long[cap];
            used = new boolean[cap];
            mask = cap - 1;
        }

        private int slot(long key) {
            long h = key * 0x9E3779B97F4A7C15L;
            int i = (int) (h ^ (h >>> 29)) & mask;
            while (used[i] && keys[i] != key) i = (i + 1) & mask;
            return i;
        }

        void put(long key, long value) {
            int i = slot(key);
            used[i] = true;
            keys[i] = key;
            values[i] = value;
        }

        long get(long key) {
            int i = slot(key);
            return used[i] ? values[i] : MISSING;
        }
    }
}
