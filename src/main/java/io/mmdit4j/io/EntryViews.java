package io.mmdit4j.io;

import io.mmdit4j.io.StateDict.Entry;
import io.mmdit4j.io.quant.QuantizedTensor;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

import static org.bytedeco.pytorch.global.torch.cat;

/**
 * Lazy transforms of checkpoint entries for key maps: row slices of fused projections (views, no copy) and
 * the half swap of final modulations stored as (shift, scale) where diffusers chunks (scale, shift).
 */
public final class EntryViews {
    private EntryViews() {}

    /**
     * Rows {@code [start, start + rows)} of {@code e} (dimension 0), loaded as a view of the full tensor; a quantized
     * entry's stored data is viewed the same way ({@link QuantizedTensor#rows}), so it stays quantized.
     */
    public static Entry rows(Entry e, long start, long rows) {
        long[] shape = e.shape().clone();
        shape[0] = rows;
        return new Entry(shape, e.dtype(), e.from(), () -> {
            try (Tensor full = e.loader().get()) {
                return full.narrow(0, start, rows);
            }
        }, e.isQuantized() ? () -> e.quantized().get().rows(start, rows) : null);
    }

    /** Equal row chunks of {@code e} (q, k, v of a fused qkv); fails when the rows do not divide. */
    public static Entry[] chunks(Entry e, int n) {
        long r = e.shape()[0];
        if (e.shape().length == 0 || r % n != 0) {
            throw new ModelFormatException("tensor '" + e.from() + "' has " + r + " rows, expected a multiple of " + n);
        }
        Entry[] out = new Entry[n];
        for (int i = 0; i < n; i++) out[i] = rows(e, i * (r / n), r / n);
        return out;
    }

    /** {@code e} with its two row halves exchanged (a copy; quantized data as two views, no copy). */
    public static Entry swapHalves(Entry e) {
        long half = e.shape()[0] / 2;
        if (e.shape()[0] % 2 != 0) {
            throw new ModelFormatException("tensor '" + e.from() + "' has " + e.shape()[0] + " rows, expected an even number (two halves)");
        }
        return new Entry(e.shape(), e.dtype(), e.from(), () -> {
            try (Tensor full = e.loader().get()) {
                return cat(new TensorVector(full.narrow(0, half, half), full.narrow(0, 0, half)), 0);
            }
        }, e.isQuantized() ? () -> QuantizedTensor.concatRows(e.quantized().get().rows(half, half), e.quantized().get().rows(0, half)) : null);
    }
}
