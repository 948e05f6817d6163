package io.mmdit4j.io;

import io.mmdit4j.runtime.DType;

import java.util.Arrays;

/** One header entry of a safetensors file; offsets are relative to the start of the data section. */
public record TensorInfo(String name, DType dtype, long[] shape, long begin, long end) {
    public long numel() {
        long n = 1;
        for (long s : shape) n *= s;
        return n;
    }

    public long byteLength() {
        return end - begin;
    }

    public String shapeString() {
        return Arrays.toString(shape);
    }
}
