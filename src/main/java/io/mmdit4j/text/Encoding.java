package io.mmdit4j.text;

/**
 * A tokenised prompt as the pipelines use it: ids padded/truncated to a fixed length and the attention mask
 * (1 on real tokens including BOS/EOS, 0 on padding), plus the untruncated ids for diagnostics.
 */
public record Encoding(long[] ids, long[] attentionMask, long[] untruncatedIds) {
    /** Number of real (unpadded) tokens. */
    public int length() {
        int n = 0;
        for (long m : attentionMask) n += (int) m;
        return n;
    }

    /** Whether the prompt was cut to fit. */
    public boolean truncated() {
        return untruncatedIds.length > ids.length || (untruncatedIds.length > length());
    }
}
