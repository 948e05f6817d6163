package io.mmdit4j.text;

import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import java.util.Arrays;

/** Checks on token-id inputs of the text encoders, before any embedding lookup. */
public final class TokenIds {
    private TokenIds() {}

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
