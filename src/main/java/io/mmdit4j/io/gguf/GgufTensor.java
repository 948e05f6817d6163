package io.mmdit4j.io.gguf;

import io.mmdit4j.io.quant.BlockQuantizedTensor;
import io.mmdit4j.io.quant.Q8Fast;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.DeviceOptional;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch.ScalarType;

import static io.mmdit4j.io.quant.Dequant.bits;
import static io.mmdit4j.io.quant.Dequant.bytes;
import static io.mmdit4j.io.quant.Dequant.f16;
import static io.mmdit4j.io.quant.Dequant.scalar;
import static io.mmdit4j.io.quant.Dequant.u8;
import static org.bytedeco.pytorch.global.torch.cat;
import static org.bytedeco.pytorch.global.torch.empty;

/**
 * A tensor in one of GGUF's block types, dequantized with ggml's {@code dequantize_row_*} formulas (golden
 * {@code gguf/README}): every product and sum one fp32 op in the order ggml writes it, so the values equal ggml's, gguf-py's
 * and ComfyUI-GGUF's fp32 dequantization bit for bit.
 */
public final class GgufTensor extends BlockQuantizedTensor {
    private final GgufType type;

    /** @param blocks {@code [n, type.blockBytes()]} uint8, owned from now on */
    public GgufTensor(GgufType type, long[] shape, Tensor blocks) {
        super(shape, blocks);
        if (!type.quantized()) throw new IllegalArgumentException(type + " is not a GGUF block type read here");
        this.type = type;
    }

    /** A shapes-only tensor of {@code type} on the meta device (real-size dry runs). */
    public static GgufTensor meta(GgufType type, long[] shape) {
        long n = 1;
        for (long s : shape) n = Math.multiplyExact(n, s);
        try (PointerScope scope = new PointerScope(); Device meta = new Device("meta")) {
            Tensor blocks = empty(new long[] {n / type.blockElements(), type.blockBytes()},
                    new TensorOptions(ScalarType.Byte).device(new DeviceOptional(meta)), new MemoryFormatOptional());
            return new GgufTensor(type, shape, Tensors.keep(blocks));
        }
    }

    public GgufType type() {
        return type;
    }

    @Override
    public String format() {
        return type.name();
    }

    @Override
    public long blockElements() {
        return type.blockElements();
    }

    @Override
    protected BlockQuantizedTensor with(Tensor blocks) {
        return new GgufTensor(type, shape(), blocks);
    }

    /** Q8_0 ranges of whole blocks on the CPU take the fused dequantizer ({@link Q8Fast}: the same values, one pass). */
    @Override
    public Tensor elements(long first, long count, ScalarType dtype) {
        if (type == GgufType.Q8_0 && Q8Fast.active() && first % 32 == 0 && count % 32 == 0 && count > 0) {
            Tensor fast = Q8Fast.decode(blocks, first / 32, count / 32, dtype);
            if (fast != null) return fast;
        }
        return super.elements(first, count, dtype);
    }

    @Override
    protected Tensor decode(Tensor raw) {
        long n = raw.size(0);
        DeviceSpec dev = DeviceSpec.of(raw);
        switch (type) {
            case Q8_0: { // f16 d | i8 q[32]:  w = d * q
                return u8(raw, 2, 32).view(ScalarType.Char).to(ScalarType.Float).mul_(f16(raw, 0));
            }
            case Q4_0: { // f16 d | u8 qs[16]:  w = d * (q - 8)
                return nibbles(u8(raw, 2, 16)).to(ScalarType.Float).sub_(scalar(8)).mul_(f16(raw, 0));
            }
            case Q4_1: { // f16 d | f16 m | u8 qs[16]:  w = d * q + m
                return nibbles(u8(raw, 4, 16)).to(ScalarType.Float).mul_(f16(raw, 0)).add_(f16(raw, 2));
            }
            case Q5_0: { // f16 d | u32 qh | u8 qs[16]:  w = d * (q - 16)
                return fiveBits(u8(raw, 6, 16), u8(raw, 2, 4), dev).to(ScalarType.Float).sub_(scalar(16)).mul_(f16(raw, 0));
            }
            case Q5_1: { // f16 d | f16 m | u32 qh | u8 qs[16]:  w = d * q + m
                return fiveBits(u8(raw, 8, 16), u8(raw, 4, 4), dev).to(ScalarType.Float).mul_(f16(raw, 0)).add_(f16(raw, 2));
            }
            case Q2_K: { // u8 scales[16] | u8 qs[64] | f16 d | f16 dmin
                Tensor s = u8(raw, 0, 16);
                Tensor q = bits(u8(raw, 16, 64).view(n, 2, 1, 32), bytes(dev, new long[] {1, 1, 4, 1}, 0, 2, 4, 6), 3); // [n,2(n),4(j),32(l)]
                Tensor dl = bits(s, 0, 15).to(ScalarType.Float).mul_(f16(raw, 80));      // d * (s & 15)     [n,16]
                Tensor ml = bits(s, 4, 15).to(ScalarType.Float).mul_(f16(raw, 82));      // dmin * (s >> 4)  [n,16]
                return q.to(ScalarType.Float).view(n, 16, 16).mul_(dl.unsqueeze(2)).sub_(ml.unsqueeze(2)).view(n, 256);
            }
            case Q3_K: { // u8 hmask[32] | u8 qs[64] | u8 scales[12] | f16 d
                Tensor sc = scales3(u8(raw, 96, 12), dev);                                // [n,16] fp32 (6-bit signed)
                Tensor lo = bits(u8(raw, 32, 64).view(n, 2, 1, 32), bytes(dev, new long[] {1, 1, 4, 1}, 0, 2, 4, 6), 3);
                Tensor hm = bits(u8(raw, 0, 32).view(n, 1, 1, 32), bytes(dev, new long[] {1, 2, 4, 1}, 0, 1, 2, 3, 4, 5, 6, 7), 1);
                Tensor q = lo.to(ScalarType.Float).add_(hm.to(ScalarType.Float).mul_(scalar(4))).sub_(scalar(4)); // lo - (h ? 0 : 4)
                Tensor dl = sc.mul_(f16(raw, 108));                                       // d * sc
                return q.view(n, 16, 16).mul_(dl.unsqueeze(2)).view(n, 256);
            }
            case Q4_K: { // f16 d | f16 dmin | u8 scales[12] | u8 qs[128]
                Tensor[] sm = scaleMin6(u8(raw, 4, 12));
                Tensor q = bits(u8(raw, 16, 128).view(n, 4, 1, 32), bytes(dev, new long[] {1, 1, 2, 1}, 0, 4), 15); // [n,4(c),2(h),32]
                return kQuant(raw, n, q.to(ScalarType.Float), sm);
            }
            case Q5_K: { // f16 d | f16 dmin | u8 scales[12] | u8 qh[32] | u8 qs[128]
                Tensor[] sm = scaleMin6(u8(raw, 4, 12));
                Tensor lo = bits(u8(raw, 48, 128).view(n, 4, 1, 32), bytes(dev, new long[] {1, 1, 2, 1}, 0, 4), 15);
                Tensor hi = bits(u8(raw, 16, 32).view(n, 1, 1, 32), bytes(dev, new long[] {1, 4, 2, 1}, 0, 1, 2, 3, 4, 5, 6, 7), 1);
                Tensor q = lo.bitwise_or(hi.bitwise_left_shift(scalar(4)));
                return kQuant(raw, n, q.to(ScalarType.Float), sm);
            }
            case Q6_K: { // u8 ql[128] | u8 qh[64] | i8 scales[16] | f16 d
                Tensor lo = bits(u8(raw, 0, 128).view(n, 2, 1, 2, 32), bytes(dev, new long[] {1, 1, 2, 1, 1}, 0, 4), 15).view(n, 2, 4, 32);
                Tensor hi = bits(u8(raw, 128, 64).view(n, 2, 1, 32), bytes(dev, new long[] {1, 1, 4, 1}, 0, 2, 4, 6), 3);
                Tensor q = lo.bitwise_or(hi.bitwise_left_shift(scalar(4))).to(ScalarType.Float).sub_(scalar(32));
                Tensor dl = u8(raw, 192, 16).view(ScalarType.Char).to(ScalarType.Float).mul_(f16(raw, 208)); // d * scales  [n,16]
                return q.view(n, 16, 16).mul_(dl.unsqueeze(2)).view(n, 256);
            }
            default:
                throw new IllegalStateException("no dequantizer for " + type);
        }
    }

    /** Q4_0/Q4_1 nibbles: {@code q[j] = qs[j] & 15, q[j+16] = qs[j] >> 4}, {@code [n, 32]} uint8. */
    private static Tensor nibbles(Tensor qs) {
        return cat(new TensorVector(bits(qs, 0, 15), bits(qs, 4, 15)), 1);
    }

    /** Q5_0/Q5_1: nibbles with bit j of the little-endian u32 {@code qh} as bit 4 of {@code q[j]}, {@code [n, 32]} uint8. */
    private static Tensor fiveBits(Tensor qs, Tensor qh, DeviceSpec dev) {
        long n = qs.size(0);
        Tensor high = bits(qh.unsqueeze(2), bytes(dev, new long[] {1, 1, 8}, 0, 1, 2, 3, 4, 5, 6, 7), 1).view(n, 32); // bit k = byte k/8, bit k%8
        return nibbles(qs).bitwise_or(high.bitwise_left_shift(scalar(4)));
    }

    /** Q3_K's 16 signed 6-bit scales from {@code scales[12]}, as fp32 {@code [n, 16]}. */
    private static Tensor scales3(Tensor s, DeviceSpec dev) {
        long n = s.size(0);
        Tensor first = u8(s, 0, 8);
        Tensor lo = cat(new TensorVector(bits(first, 0, 15), bits(first, 4, 15)), 1);                 // k<8: s[k]&15, else s[k-8]>>4
        Tensor hi = bits(u8(s, 8, 4).view(n, 1, 4), bytes(dev, new long[] {1, 4, 1}, 0, 2, 4, 6), 3).view(n, 16); // (s[8+k%4] >> 2(k/4)) & 3
        return lo.bitwise_or(hi.bitwise_left_shift(scalar(4))).to(ScalarType.Float).sub_(scalar(32));
    }

    /** Q4_K/Q5_K's 8 (scale, min) pairs of 6 bits from {@code scales[12]}, as fp32 {@code [n, 8]} each. */
    private static Tensor[] scaleMin6(Tensor s) {
        Tensor a = u8(s, 0, 4), b = u8(s, 4, 4), c = u8(s, 8, 4);
        Tensor scLow = bits(a, 0, 63), mLow = bits(b, 0, 63);
        Tensor scHigh = bits(c, 0, 15).bitwise_or(bits(a, 6, 3).bitwise_left_shift(scalar(4)));
        Tensor mHigh = bits(c, 4, 15).bitwise_or(bits(b, 6, 3).bitwise_left_shift(scalar(4)));
        return new Tensor[] {cat(new TensorVector(scLow, scHigh), 1).to(ScalarType.Float), cat(new TensorVector(mLow, mHigh), 1).to(ScalarType.Float)};
    }

    /** {@code w = (d * sc[s]) * q - dmin * m[s]} over 8 sub-blocks of 32, {@code q} fp32 viewable as {@code [n, 8, 32]}. */
    private static Tensor kQuant(Tensor raw, long n, Tensor q, Tensor[] scaleMin) {
        Tensor d1 = scaleMin[0].mul_(f16(raw, 0));
        Tensor m1 = scaleMin[1].mul_(f16(raw, 2));
        return q.view(n, 8, 32).mul_(d1.unsqueeze(2)).sub_(m1.unsqueeze(2)).view(n, 256);
    }
}
