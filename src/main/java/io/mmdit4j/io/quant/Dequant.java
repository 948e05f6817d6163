package io.mmdit4j.io.quant;

import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Native;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;

import static org.bytedeco.pytorch.global.torch.empty;

/**
 * Tensor-op building blocks of the dequantizers: fields of packed byte blocks ({@code [n, blockBytes]} uint8) as tensors,
 * bit extraction, and the final rounding. Everything is a libtorch op on the device the blocks are on (no per-element
 * Java loop); fp32 arithmetic is done op by op, so no multiply-add is ever fused and each value is rounded exactly where
 * the reference formula rounds it.
 */
public final class Dequant {
    private Dequant() {}

    private static final Scalar[] INTS = new Scalar[257];

    /** A kept Scalar holding the integer {@code v} (0..256 cached). */
    public static Scalar scalar(long v) {
        if (v >= 0 && v < INTS.length) {
            Scalar s = INTS[(int) v];
            if (s == null) {
                synchronized (INTS) {
                    s = INTS[(int) v];
                    if (s == null) INTS[(int) v] = s = Native.keep(new Scalar(v));
                }
            }
            return s;
        }
        return new Scalar(v);
    }

    /** {@code [n, 1]} fp32: the IEEE half at byte {@code offset} of every block (subnormals included, exact). */
    public static Tensor f16(Tensor raw, long offset) {
        return raw.narrow(1, offset, 2).view(ScalarType.Half).to(ScalarType.Float);
    }

    /** {@code [n, length]} uint8: bytes {@code [offset, offset + length)} of every block (a view). */
    public static Tensor u8(Tensor raw, long offset, long length) {
        return raw.narrow(1, offset, length);
    }

    /** {@code (x >> shift) & mask} on integer tensors. */
    public static Tensor bits(Tensor x, long shift, long mask) {
        Tensor s = shift == 0 ? x : x.bitwise_right_shift(scalar(shift));
        return s.bitwise_and(scalar(mask));
    }

    /** {@code (x >> shifts) & mask} with the shifts a uint8 tensor broadcast against {@code x}. */
    public static Tensor bits(Tensor x, Tensor shifts, long mask) {
        return x.bitwise_right_shift(shifts).bitwise_and(scalar(mask));
    }

    /** A small uint8 constant (shift tables) on {@code device}, shaped {@code shape}. */
    public static Tensor bytes(DeviceSpec device, long[] shape, int... values) {
        Tensor t = empty(new long[] {values.length}, new TensorOptions(ScalarType.Byte), new MemoryFormatOptional());
        BytePointer p = new BytePointer(t.data_ptr());
        for (int i = 0; i < values.length; i++) p.put(i, (byte) values[i]);
        Tensor shaped = t.view(shape);
        if (device.isCpu()) return shaped;
        try (Device d = device.torchDevice()) {
            return shaped.to(d, ScalarType.Byte);
        }
    }

    /** {@code values} (fp32, exact) rounded once to {@code valueType}, then converted to {@code dtype}. */
    public static Tensor convert(Tensor values, ScalarType valueType, ScalarType dtype) {
        Tensor v = same(values.scalar_type(), valueType) ? values : values.to(valueType);
        return same(v.scalar_type(), dtype) ? v : v.to(dtype);
    }

    /** Whether two scalar types are the same (JavaCPP's enum constants are not unique objects: compare their values). */
    public static boolean same(ScalarType a, ScalarType b) {
        return a.value == b.value;
    }
}
