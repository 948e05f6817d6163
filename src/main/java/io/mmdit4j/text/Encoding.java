package io.mmdit4j.text;

import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.util.List;
import java.util.function.Function;

import static org.bytedeco.pytorch.global.torch.empty;

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

    /**
     * The encodings of {@code prompts} as a batch: token ids {@code [B, L]} and attention mask {@code [B, L]} (int64), in
     * the caller's scope. Every encoding must have the same length (tokenizers padding to a fixed length).
     */
    public static Tensor[] batch(List<String> prompts, Function<String, Encoding> tokenize) {
        if (prompts == null || prompts.isEmpty()) throw new IllegalArgumentException("at least one prompt is required");
        Encoding[] rows = new Encoding[prompts.size()];
        for (int i = 0; i < rows.length; i++) {
            if (prompts.get(i) == null) throw new IllegalArgumentException("prompt " + i + " is null");
            rows[i] = tokenize.apply(prompts.get(i));
        }
        int len = rows[0].ids().length;
        long[] ids = new long[rows.length * len], mask = new long[rows.length * len];
        for (int i = 0; i < rows.length; i++) {
            if (rows[i].ids().length != len) throw new IllegalArgumentException("prompt " + i + " has " + rows[i].ids().length + " ids, prompt 0 " + len);
            System.arraycopy(rows[i].ids(), 0, ids, i * len, len);
            System.arraycopy(rows[i].attentionMask(), 0, mask, i * len, len);
        }
        return new Tensor[] {longs(ids, rows.length, len), longs(mask, rows.length, len)};
    }

    private static Tensor longs(long[] data, long rows, long cols) {
        Tensor t = empty(new long[] {rows, cols}, new TensorOptions(ScalarType.Long), new MemoryFormatOptional());
        new LongPointer(t.data_ptr()).put(data);
        return t;
    }
}
