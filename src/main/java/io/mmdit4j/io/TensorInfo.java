package io.mmdit4j.io;

import io.mmdit4j.runtime.DType;

import java.util.Arrays;

/**
 * One tensor of a checkpoint as its header describes it. {@code dtype} is what {@link TensorSource#load} returns;
 * {@code format} is null for tensors stored in that dtype, else the stored quantized format ({@code Q8_0}, {@code NF4},
 * {@code F8_E4M3}, ...), whose data {@link TensorSource#quantized} gives without dequantizing. {@code begin}/{@code end}
 * are the stored bytes relative to the file's data section (for a tensor assembled from several stored ones, 0 and
 * their total size).
 */
public record TensorInfo(String name, DType dtype, long[] shape, long begin, long end, String format) {
    public TensorInfo(String name, DType dtype, long[] shape, long begin, long end) {
        this(name, dtype, shape, begin, end, null);
    }

    public long numel() {
        return numel(shape);
    }

    /** The number of elements of a tensor of {@code shape} (1 for a scalar). */
    public static long numel(long[] shape) {
        long n = 1;
        for (long s : shape) n *= s;
        return n;
    }

    /** Bytes stored in the file. */
    public long byteLength() {
        return end - begin;
    }

    public String shapeString() {
        return Arrays.toString(shape);
    }

    /** Whether the tensor is stored in a quantized format (its data stays in that format when a Linear takes it). */
    public boolean quantized() {
        return format != null;
    }

    /** The stored format: {@link #format} or the dtype's safetensors name. */
    public String storedFormat() {
        return format != null ? format : dtype.safetensorsName();
    }
}
