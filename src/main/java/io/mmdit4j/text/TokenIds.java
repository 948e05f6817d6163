package io.mmdit4j.text;

import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import java.util.Arrays;
import java.util.List;
import java.util.function.Function;

import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;

import static org.bytedeco.pytorch.global.torch.empty;

/** Token-id tensors of tokenised prompts, and checks on token-id inputs of the text encoders before any embedding lookup. */
public final class TokenIds {
    private TokenIds() {}

    /** The ids {@code [B, L]} (int64) of the prompts' encodings (each of one length); in the caller's scope. */
    public static Tensor ids(List<String> prompts, Function<String, Encoding> tokenize) {
        return batch(prompts, tokenize)[0];
    }

    /** Token ids {@code [B, L]} and attention mask {@code [B, L]} (int64) of the prompts' encodings; in the caller's scope. */
    public static Tensor[] batch(List<String> prompts, Function<String, Encoding> tokenize) {
        if (prompts.isEmpty()) throw new IllegalArgumentException("at least one prompt is required");
        Encoding[] rows = new Encoding[prompts.size()];
        for (int i = 0; i < rows.length; i++) {
            if (prompts.get(i) == null) throw new IllegalArgumentException("prompt " + i + " is null");
            rows[i] = tokenize.apply(prompts.get(i));
        }
        int len = rows[0].ids().length;
        long[] ids = new long[rows.length * len], mask = new long[rows.length * len];
        for (int i = 0; i < rows.length; i++) {
            if (rows[i].ids().length != len) throw new IllegalArgumentException("prompt " + i + " encodes to " + rows[i].ids().length + " ids, not " + len);
            System.arraycopy(rows[i].ids(), 0, ids, i * len, len);
            System.arraycopy(rows[i].attentionMask(), 0, mask, i * len, len);
        }
        return new Tensor[] {longs(ids, rows.length, len), longs(mask, rows.length, len)};
    }

    private static Tensor longs(long[] data, long rows, long cols) {
        Tensor t = empty(new long[] {rows, cols}, new TensorOptions(ScalarType.Long), new MemoryFormatOptional());
        if (data.length > 0) new LongPointer(t.data_ptr()).put(data);
        return t;
    }

    /** Integer ids of rank 2 whose values lie in {@code [0, vocabSize)}; otherwise a clear IllegalArgumentException. */
    public static void check(Tensor ids, long vocabSize, long maxLength) {
        if (ids == null || ids.isNull()) throw new IllegalArgumentException("input_ids are required");
        if (ids.dim() != 2 || ids.size(1) < 1 || ids.size(1) > maxLength) {
            throw new IllegalArgumentException("input_ids has shape " + Arrays.toString(Tensors.shape(ids))
                    + ", expected [batch, 1.." + maxLength + "]");
        }
        if (Tensors.dtype(ids).isFloatingPoint()) {
            throw new IllegalArgumentException("input_ids must be integers, got " + Tensors.dtype(ids).torchName());
        }
        if (ids.numel() == 0) return;
        try (PointerScope scope = new PointerScope()) {
            long min = ids.min().item_long(), max = ids.max().item_long();
            if (min < 0 || max >= vocabSize) {
                throw new IllegalArgumentException("input_ids hold ids in [" + min + ", " + max + "], but the vocabulary has "
                        + vocabSize + " entries");
            }
        }
    }
}
