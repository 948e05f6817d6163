package io.mmdit4j.runtime;

import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.util.Arrays;

import static org.bytedeco.pytorch.global.torch.empty;

/**
 * Small helpers around libtorch tensors and the native-memory rules of this project:
 * temporaries live in a {@link org.bytedeco.javacpp.PointerScope}; a result that must outlive its
 * scope is {@link #keep kept} (its reference count raised) and closed by its new owner.
 */
public final class Tensors {
    private Tensors() {}

    /** Lets {@code t} survive the enclosing PointerScope; the caller now owns it and must close it. */
    public static Tensor keep(Tensor t) {
        return Native.keep(t);
    }

    public static long[] shape(Tensor t) {
        int n = (int) t.dim();
        long[] s = new long[n];
        for (int i = 0; i < n; i++) s[i] = t.size(i);
        return s;
    }

    public static String shapeString(long[] shape) {
        return Arrays.toString(shape);
    }

    /** {@code t}'s shape as {@code [a, b, c]}, for messages. */
    public static String shapeString(Tensor t) {
        return shapeString(shape(t));
    }

    /** Fails with {@code "<what> has shape [..], expected [..]"} unless {@code t}'s shape is exactly {@code expected}. */
    public static void requireShape(String what, Tensor t, long... expected) {
        if (!Arrays.equals(shape(t), expected)) {
            throw new IllegalArgumentException(what + " has shape " + shapeString(t) + ", expected " + Arrays.toString(expected));
        }
    }

    public static DType dtype(Tensor t) {
        return DType.of(t.scalar_type());
    }

    /** Copies any floating tensor's values to a Java array (as fp32). */
    public static float[] toFloats(Tensor t) {
        Tensor f;
        try (org.bytedeco.pytorch.Device cpu = new org.bytedeco.pytorch.Device("cpu")) {
            f = t.to(cpu, ScalarType.Float).contiguous();
        }
        try {
            float[] out = new float[(int) f.numel()];
            if (out.length > 0) f.data_ptr_float().get(out);
            return out;
        } finally {
            f.close();
        }
    }

    /** Copies a CPU floating tensor's values to a Java array as fp64 (gradient checks). */
    public static double[] toDoubles(Tensor t) {
        try (Tensor d = t.to(ScalarType.Double).contiguous()) {
            double[] out = new double[(int) d.numel()];
            if (out.length > 0) d.data_ptr_double().get(out);
            return out;
        }
    }

    /** A torch-owned fp32 tensor holding a copy of {@code data}. */
    public static Tensor fromFloats(float[] data, long... shape) {
        long n = 1;
        for (long s : shape) n *= s;
        if (n != data.length) {
            throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " needs " + n + " values, got " + data.length);
        }
        Tensor t = empty(shape, new TensorOptions(ScalarType.Float), new MemoryFormatOptional());
        if (data.length > 0) {
            FloatPointer p = new FloatPointer(t.data_ptr());
            p.put(data);
        }
        return t;
    }

    /**
     * A 0-dim {@code type} tensor holding {@code value} on {@code like}'s device, made by a fill there (the value is a
     * kernel argument: no host-to-device copy, unlike a CPU scalar tensor moved with {@code to}). In the caller's scope.
     */
    public static Tensor scalarOn(double value, ScalarType type, Tensor like) {
        TensorOptions o = new TensorOptions(type);
        if (!like.is_cpu()) o = o.device(new org.bytedeco.pytorch.DeviceOptional(like.device()));
        return org.bytedeco.pytorch.global.torch.scalar_tensor(new org.bytedeco.pytorch.Scalar(value), o);
    }

    /**
     * {@code [n, 1]} fp32 holding {@code values} on {@code like}'s device, made by fills there (each value a kernel
     * argument, no host-to-device copy): what {@link #fromFloats} then a move would give. In the caller's scope.
     */
    public static Tensor columnOn(float[] values, Tensor like) {
        if (values.length == 1) return scalarOn(values[0], ScalarType.Float, like).view(1, 1);
        org.bytedeco.pytorch.TensorVector rows = new org.bytedeco.pytorch.TensorVector();
        for (float v : values) rows.push_back(scalarOn(v, ScalarType.Float, like).view(1, 1));
        return org.bytedeco.pytorch.global.torch.cat(rows, 0);
    }

    /** Closes every non-null tensor, ignoring already-closed ones. */
    public static void closeAll(Iterable<? extends Tensor> tensors) {
        for (Tensor t : tensors) Native.release(t);
    }

    /**
     * Each slice along {@code dim} {@code n} times in a row (diffusers' {@code repeat(..., n, ...).view(...)} of prompt
     * embeddings per image); {@code t} itself when {@code n == 1}. In the caller's scope.
     */
    public static Tensor repeatRows(Tensor t, int n, long dim) {
        if (n < 1) throw new IllegalArgumentException("repeats must be >= 1, got " + n);
        return n == 1 ? t : org.bytedeco.pytorch.global.torch.repeat_interleave(t, n, new org.bytedeco.pytorch.LongOptional(dim),
                new org.bytedeco.pytorch.LongOptional());
    }
}
