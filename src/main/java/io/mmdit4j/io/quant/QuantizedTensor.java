package io.mmdit4j.io.quant;

import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.bytedeco.pytorch.global.torch.cat;

/**
 * A tensor stored in a quantized format (GGUF blocks, bitsandbytes 4-bit, fp8 with an optional scale) that stays in that
 * format in memory and is dequantized on demand, a range of elements at a time, with libtorch tensor ops on the device
 * its data is on. Dequantization is exact: every value is the format's reference formula evaluated in fp32 (the order
 * of operations of ggml / bitsandbytes / torch's fp8 casts, no fused multiply-add), rounded once to the format's value
 * dtype ({@link #valueType}: fp32, or bitsandbytes' stated dtype) and then converted to the dtype asked for.
 *
 * <p>Elements are numbered in row-major order of the logical (torch) {@link #shape}; rows are the slices along
 * dimension 0. {@link #rows} and {@link #concatRows} make views (no copy) for checkpoint key maps that split fused
 * projections or swap halves. A {@code QuantizedTensor} owns native tensors (views of a checkpoint's mapping, or copies
 * on a device) and must be {@linkplain #close closed}; a view owns the tensors it was made from. Every tensor these
 * methods return is owned by the caller (one extra reference that no enclosing {@code PointerScope} releases): close it.
 */
public abstract class QuantizedTensor implements AutoCloseable {
    private final long[] shape;
    private final long numel;

    protected QuantizedTensor(long[] shape) {
        this.shape = shape.clone();
        long n = 1;
        for (long s : shape) n = Math.multiplyExact(n, s);
        this.numel = n;
    }

    /** The logical (torch) shape. */
    public final long[] shape() {
        return shape.clone();
    }

    public final long numel() {
        return numel;
    }

    /** Rows (dimension 0; a 0-d tensor has one). */
    public final long rows() {
        return shape.length == 0 ? 1 : shape[0];
    }

    /** Elements per row. */
    public final long rowElements() {
        return rows() == 0 ? 0 : numel / rows();
    }

    /** The stored format, as checkpoints name it: {@code Q8_0}, {@code Q4_K}, {@code NF4}, {@code F8_E4M3}, ... */
    public abstract String format();

    /** Bytes of stored data behind these elements (their share of the file, scales included). */
    public abstract long storedBytes();

    /** Where the stored data is. */
    public abstract DeviceSpec device();

    /** The dtype each value is rounded to before any conversion (fp32, or bitsandbytes' stated dtype). */
    public ScalarType valueType() {
        return ScalarType.Float;
    }

    /**
     * The exact fp32 values of elements {@code [first, first + count)} (the format's formula, before the rounding to
     * {@link #valueType}), a flat tensor {@code [count]} on {@link #device}, owned by the caller.
     */
    public abstract Tensor values(long first, long count);

    /**
     * Elements {@code [first, first + count)} dequantized into {@code dtype} (the exact values rounded to
     * {@link #valueType}, then converted), a flat tensor {@code [count]} on {@link #device}, owned by the caller.
     */
    public Tensor elements(long first, long count, ScalarType dtype) {
        try (PointerScope scope = new PointerScope(); Tensor v = values(first, count)) { // owned: closed here, whatever the scope
            return Tensors.keep(Dequant.convert(v, valueType(), dtype));
        }
    }

    /**
     * How many elements one dequantization unit covers (a block): ranges starting and ending on multiples of it are
     * dequantized without waste. 1 for per-element formats.
     */
    public abstract long blockElements();

    /** Rows {@code [first, first + count)} dequantized into {@code dtype}: {@code [count, shape[1:]...]}, owned by the caller. */
    public Tensor dequantizeRows(long first, long count, ScalarType dtype) {
        checkRows(first, count);
        long[] s = shape.length == 0 ? new long[0] : shape.clone();
        if (s.length > 0) s[0] = count;
        try (PointerScope scope = new PointerScope(); Tensor e = elements(first * rowElements(), count * rowElements(), dtype)) {
            return Tensors.keep(e.view(s));
        }
    }

    /** The whole tensor dequantized into {@code dtype}, in its shape, owned by the caller. */
    public Tensor dequantize(ScalarType dtype) {
        try (PointerScope scope = new PointerScope(); Tensor e = elements(0, numel, dtype)) {
            return Tensors.keep(e.view(shape));
        }
    }

    /**
     * How many rows to dequantize at a time for about {@code targetElements} elements: at least 1, a whole number of
     * blocks where possible, at most all rows.
     */
    public long rowChunk(long targetElements) {
        long perRow = Math.max(1, rowElements());
        long rows = Math.max(1, targetElements / perRow);
        long block = blockElements();
        if (block > 1 && perRow % block != 0) {
            long step = block / gcd(block, perRow); // rows per whole number of blocks
            rows = Math.max(step, rows / step * step);
        }
        return Math.min(rows, rows());
    }

    /** A view of rows {@code [first, first + count)}: no copy; owns this tensor (closing the view closes it). */
    public QuantizedTensor rows(long first, long count) {
        checkRows(first, count);
        if (first == 0 && count == rows()) return this;
        return new RowView(this, first, count);
    }

    /** {@code parts} stacked along dimension 0 (no copy): equal trailing shapes, one format; owns the parts. */
    public static QuantizedTensor concatRows(QuantizedTensor... parts) {
        return new Concat(List.of(parts));
    }

    /**
     * The same tensor over {@code f} applied to each of its native tensors (new references; this one is left as it is);
     * owned by the caller. How the data moves between devices, gets pinned, or is visited.
     */
    public abstract QuantizedTensor map(java.util.function.UnaryOperator<Tensor> f);

    /**
     * The same tensor with its data on {@code device} (a copy, started without waiting where the source is pinned host
     * memory; a same-device call shares the data); owned by the caller.
     */
    public QuantizedTensor to(DeviceSpec device) {
        try (org.bytedeco.pytorch.Device d = device.torchDevice()) {
            return map(t -> t.to(d, t.scalar_type(), true, false, new org.bytedeco.pytorch.MemoryFormatOptional()));
        }
    }

    /** The same data copied into pinned (page-locked) host memory, so copies to a GPU can overlap compute; owned by the caller. */
    public QuantizedTensor pinned() {
        return map(Tensor::pin_memory);
    }

    /** Calls {@code visit} with each of the native tensors holding the data (borrowed), e.g. to tell the allocator another stream uses them. */
    public void forEachTensor(java.util.function.Consumer<Tensor> visit) {
        map(t -> { // the same tensors, each with one more reference, which closing the view gives back
            visit.accept(t);
            return t;
        }).close();
    }

    @Override
    public abstract void close();

    /** The logical shape without dimension 0. */
    final long[] rowShape() {
        return shape.length == 0 ? new long[0] : Arrays.copyOfRange(shape, 1, shape.length);
    }

    private void checkRows(long first, long count) {
        if (first < 0 || count < 0 || first + count > rows()) {
            throw new IndexOutOfBoundsException("rows [" + first + ", " + (first + count) + ") of a " + format() + " tensor "
                    + Arrays.toString(shape) + " with " + rows() + " rows");
        }
    }

    static long gcd(long a, long b) {
        while (b != 0) {
            long t = a % b;
            a = b;
            b = t;
        }
        return a;
    }

    static long[] withRows(long[] rowShape, long rows) {
        long[] s = new long[rowShape.length + 1];
        s[0] = rows;
        System.arraycopy(rowShape, 0, s, 1, rowShape.length);
        return s;
    }

    /** Rows of another quantized tensor. */
    private static final class RowView extends QuantizedTensor {
        private final QuantizedTensor base;
        private final long offset; // in elements

        RowView(QuantizedTensor base, long first, long count) {
            super(withRows(base.rowShape(), count));
            this.base = base;
            this.offset = first * base.rowElements();
        }

        @Override public String format() { return base.format(); }
        @Override public long storedBytes() { return base.numel() == 0 ? 0 : (long) Math.ceil((double) base.storedBytes() * numel() / base.numel()); }
        @Override public DeviceSpec device() { return base.device(); }
        @Override public ScalarType valueType() { return base.valueType(); }
        @Override public long blockElements() { return gcd(base.blockElements(), offset == 0 ? base.blockElements() : offset); }

        @Override
        public Tensor values(long first, long count) {
            return base.values(offset + first, count);
        }

        @Override
        public Tensor elements(long first, long count, ScalarType dtype) {
            return base.elements(offset + first, count, dtype);
        }

        @Override
        public QuantizedTensor map(java.util.function.UnaryOperator<Tensor> f) {
            return new RowView(base.map(f), offset / base.rowElements(), rows());
        }


        @Override
        public void close() {
            base.close();
        }
    }

    /** Several quantized tensors stacked along dimension 0. */
    private static final class Concat extends QuantizedTensor {
        private final List<QuantizedTensor> parts;

        Concat(List<QuantizedTensor> parts) {
            super(withRows(parts.get(0).rowShape(), parts.stream().mapToLong(QuantizedTensor::rows).sum()));
            for (QuantizedTensor p : parts) {
                if (!Arrays.equals(p.rowShape(), parts.get(0).rowShape()) || !p.format().equals(parts.get(0).format())) {
                    throw new IllegalArgumentException("cannot stack a " + p.format() + " " + Arrays.toString(p.shape()) + " tensor on a "
                            + parts.get(0).format() + " " + Arrays.toString(parts.get(0).shape()) + " one");
                }
            }
            this.parts = parts;
        }

        @Override public String format() { return parts.get(0).format(); }
        @Override public long storedBytes() { return parts.stream().mapToLong(QuantizedTensor::storedBytes).sum(); }
        @Override public DeviceSpec device() { return parts.get(0).device(); }
        @Override public ScalarType valueType() { return parts.get(0).valueType(); }

        @Override
        public long blockElements() {
            long b = 0;
            for (QuantizedTensor p : parts) b = gcd(b, gcd(p.blockElements(), p.numel()));
            return Math.max(1, b);
        }

        @Override
        public Tensor values(long first, long count) {
            return gather(first, count, (p, a, n) -> p.values(a, n));
        }

        @Override
        public Tensor elements(long first, long count, ScalarType dtype) {
            return gather(first, count, (p, a, n) -> p.elements(a, n, dtype));
        }

        private interface Piece {
            Tensor of(QuantizedTensor part, long first, long count);
        }

        /**
         * The pieces of {@code [first, first + count)}, concatenated; a range inside one part is that part's tensor
         * itself (an element of a TensorVector is a reference into the vector, which dies with it: returning it crashed
         * the next op, a chunk of a stacked weight that fell inside one part).
         */
        private Tensor gather(long first, long count, Piece piece) {
            List<Tensor> got = new ArrayList<>(); // owned
            try {
                long start = 0;
                for (QuantizedTensor p : parts) {
                    long end = start + p.numel();
                    long a = Math.max(first, start), b = Math.min(first + count, end);
                    if (a < b) got.add(piece.of(p, a - start, b - a));
                    start = end;
                }
                if (got.size() == 1) return got.remove(0);
                try (PointerScope scope = new PointerScope()) {
                    TensorVector pieces = new TensorVector();
                    for (Tensor t : got) pieces.push_back(t);
                    return Tensors.keep(cat(pieces, 0));
                }
            } finally {
                got.forEach(Native::release);
            }
        }

        @Override
        public QuantizedTensor map(java.util.function.UnaryOperator<Tensor> f) {
            List<QuantizedTensor> moved = new ArrayList<>();
            try {
                for (QuantizedTensor p : parts) moved.add(p.map(f));
            } catch (RuntimeException e) {
                moved.forEach(QuantizedTensor::close);
                throw e;
            }
            return new Concat(moved);
        }


        @Override
        public void close() {
            parts.forEach(QuantizedTensor::close);
        }
    }

    /** Releases native tensors that may be null. */
    protected static void release(Tensor... tensors) {
        for (Tensor t : tensors) Native.release(t);
    }
}
