package io.mmdit4j.io.quant;

import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch.ScalarType;

import static org.bytedeco.pytorch.global.torch.arange;
import static org.bytedeco.pytorch.global.torch.embedding;
import static org.bytedeco.pytorch.global.torch.stack;

/**
 * A bitsandbytes 4-bit weight (NF4 or FP4) as diffusers saves it: the flattened row-major weight as 4-bit codes, two per
 * byte (even element in the high nibble), blocks of {@code blocksize} elements each scaled by its {@code absmax} (fp32, or
 * with double quantization 8-bit codes into {@code nested_quant_map} scaled by {@code nested_absmax} per 256 blocks plus
 * {@code nested_offset}). {@code w = quant_map[code] · absmax[block]} in fp32, rounded to the state's dtype (bitsandbytes'
 * {@code dequantize_4bit}).
 */
public final class Bnb4Tensor extends QuantizedTensor {
    /** What a quant_state describes (validated against the tensors by the reader). */
    public record State(String quantType, int blocksize, ScalarType dtype, int nestedBlocksize, float nestedOffset) {}

    private final State state;
    private final Tensor packed;      // [ceil(n/2)] uint8, owned
    private final Tensor absmax;      // [blocks] fp32, or uint8 codes with double quantization; owned
    private final Tensor pairs;       // [256, 2] fp32: (quant_map[b >> 4], quant_map[b & 15]) for every byte b; owned
    private final Tensor nestedAbsmax; // [ceil(blocks/256)] fp32 or null; owned
    private final Tensor nestedMap;    // [256] fp32 or null; owned
    private final Tensor quantMap;     // [16] fp32, owned (kept for moves between devices)

    /** Takes ownership of every tensor (flattened views are fine); {@code nested*} null without double quantization. */
    public Bnb4Tensor(long[] shape, State state, Tensor packed, Tensor absmax, Tensor quantMap, Tensor nestedAbsmax, Tensor nestedMap) {
        super(shape);
        this.state = state;
        this.packed = packed;
        this.absmax = absmax;
        this.quantMap = quantMap;
        this.nestedAbsmax = nestedAbsmax;
        this.nestedMap = nestedMap;
        try (PointerScope scope = new PointerScope()) {
            Tensor qm = quantMap.to(ScalarType.Float).reshape(16);
            this.pairs = Tensors.keep(stack(new TensorVector(qm.repeat_interleave(16), qm.repeat(16)), 1));
        }
    }

    /** A shapes-only tensor on the meta device, double-quantized (real-size dry runs). */
    public static Bnb4Tensor meta(long[] shape, State state) {
        long n = 1;
        for (long d : shape) n = Math.multiplyExact(n, d);
        long blocks = (n + state.blocksize() - 1) / state.blocksize();
        try (PointerScope scope = new PointerScope()) {
            return new Bnb4Tensor(shape, state, Tensors.keep(meta((n + 1) / 2, ScalarType.Byte)), Tensors.keep(meta(blocks, ScalarType.Byte)),
                    Tensors.keep(meta(16, ScalarType.Float)), Tensors.keep(meta((blocks + 255) / 256, ScalarType.Float)), Tensors.keep(meta(256, ScalarType.Float)));
        }
    }

    private static Tensor meta(long n, ScalarType t) {
        try (Device d = new Device("meta")) {
            return org.bytedeco.pytorch.global.torch.empty(new long[] {n}, new TensorOptions(t).device(new org.bytedeco.pytorch.DeviceOptional(d)),
                    new org.bytedeco.pytorch.MemoryFormatOptional());
        }
    }

    public State state() {
        return state;
    }

    public boolean doubleQuantized() {
        return nestedMap != null;
    }

    @Override
    public String format() {
        return state.quantType().toUpperCase(java.util.Locale.ROOT);
    }

    @Override
    public ScalarType valueType() {
        return state.dtype();
    }

    @Override
    public long storedBytes() {
        long b = packed.numel() + absmax.numel() * absmax.element_size() + quantMap.numel() * 4;
        if (nestedMap != null) b += nestedAbsmax.numel() * 4 + nestedMap.numel() * 4;
        return b;
    }

    @Override
    public DeviceSpec device() {
        return DeviceSpec.of(packed);
    }

    @Override
    public long blockElements() {
        return state.blocksize();
    }

    /** The fp32 scales of blocks {@code [b0, b1)}. */
    private Tensor scales(long b0, long b1) {
        Tensor a = absmax.narrow(0, b0, b1 - b0);
        if (nestedMap == null) return a;
        if (a.is_meta()) return a.to(ScalarType.Float); // shapes only (index_select has no meta kernel)
        Tensor mapped = nestedMap.index_select(0, a.to(ScalarType.Long));
        Tensor group = arange(new Scalar(b0), new Scalar(b1), new TensorOptions(ScalarType.Long).device(new org.bytedeco.pytorch.DeviceOptional(mapped.device())))
                .floor_divide(new Scalar(state.nestedBlocksize()));
        return mapped.mul_(nestedAbsmax.index_select(0, group)).add_(new Scalar(state.nestedOffset()));
    }

    @Override
    public Tensor values(long first, long count) {
        long bs = state.blocksize();
        long b0 = first / bs, b1 = (first + count + bs - 1) / bs;
        long e0 = b0 * bs, e1 = Math.min(numel(), b1 * bs);      // elements decoded: whole blocks (the last may be short)
        try (PointerScope scope = new PointerScope()) {
            long byte0 = e0 / 2, byte1 = (e1 + 1) / 2;             // blocksize is even: e0 is even
            Tensor bytes = packed.narrow(0, byte0, byte1 - byte0);
            Tensor v = bytes.is_meta() ? bytes.to(ScalarType.Float).unsqueeze(1).expand(-1, 2).reshape(-1) // shapes only: no meta index_select
                    : embedding(pairs, bytes.to(ScalarType.Long)).view(-1);                                   // [2·bytes]
            if (v.size(0) != e1 - e0) v = v.narrow(0, 0, e1 - e0); // an odd element count: the last low nibble is padding
            Tensor s = scales(b0, b1);
            if ((e1 - e0) % bs == 0) v = v.view(b1 - b0, bs).mul_(s.unsqueeze(1)).view(-1);
            else v = v.mul_(s.unsqueeze(1).expand(-1, bs).reshape(-1).narrow(0, 0, e1 - e0));
            if (first != e0 || count != e1 - e0) v = v.narrow(0, first - e0, count);
            return Tensors.keep(v);
        }
    }

    @Override
    public QuantizedTensor map(java.util.function.UnaryOperator<Tensor> f) {
        try (PointerScope scope = new PointerScope()) {
            return new Bnb4Tensor(shape(), state, Tensors.keep(f.apply(packed)), Tensors.keep(f.apply(absmax)), Tensors.keep(f.apply(quantMap)),
                    nestedAbsmax == null ? null : Tensors.keep(f.apply(nestedAbsmax)), nestedMap == null ? null : Tensors.keep(f.apply(nestedMap)));
        }
    }

    @Override
    public void close() {
        release(packed, absmax, quantMap, nestedAbsmax, nestedMap, pairs);
    }
}
