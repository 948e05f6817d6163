package io.mmdit4j.io.quant;

import io.mmdit4j.io.gguf.GgufQuantizer;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The Vector API loop of {@link Q8Fast}: GGUF Q8_0 blocks ({@code f16 d | i8 q[32]}) to {@code d * q} in fp32, written as
 * fp32 or rounded once to nearest-even bf16. Loaded only when {@code jdk.incubator.vector} is in the boot layer
 * ({@link Q8Fast#AVAILABLE}); every other class of the engine runs without the module.
 */
final class Q8Kernel {
    private Q8Kernel() {}

    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
    static final VectorSpecies<Byte> B = VectorSpecies.of(byte.class, VectorShape.forBitSize(F.vectorBitSize() / 4));
    static final VectorSpecies<Short> S = VectorSpecies.of(short.class, VectorShape.forBitSize(F.vectorBitSize() / 2));
    static final int LANES = F.length();
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    /** Whether the preferred vectors are wide enough to be worth it (AVX2 or wider) and divide a block. */
    static boolean usable() {
        return LANES >= 8 && 32 % LANES == 0;
    }

    /**
     * Decodes {@code blocks} blocks of {@code src} (from byte 0, 34 bytes each) into {@code dst} (from byte 0): fp32
     * values ({@code bf16 == false}, 128 bytes a block) or bf16 ({@code 64 bytes a block}). Both buffers little-endian
     * native memory.
     */
    static void decode(ByteBuffer src, ByteBuffer dst, int blocks, boolean bf16) {
        if (bf16) toBf16(src, dst, blocks);
        else toF32(src, dst, blocks);
    }

    private static void toF32(ByteBuffer src, ByteBuffer dst, int blocks) {
        for (int b = 0; b < blocks; b++) {
            int s = b * 34, o = b * 128;
            float d = GgufQuantizer.halfToFloat(src.getShort(s) & 0xFFFF);
            for (int j = 0; j < 32; j += LANES) {
                ByteVector q = ByteVector.fromByteBuffer(B, src, s + 2 + j, LE);
                FloatVector v = ((FloatVector) q.convertShape(VectorOperators.B2F, F, 0)).mul(d);
                v.intoByteBuffer(dst, o + 4 * j, LE);
            }
        }
    }

    private static void toBf16(ByteBuffer src, ByteBuffer dst, int blocks) {
        for (int b = 0; b < blocks; b++) {
            int s = b * 34, o = b * 64;
            float d = GgufQuantizer.halfToFloat(src.getShort(s) & 0xFFFF);
            boolean finite = Float.isFinite(d); // then no product is NaN (an infinite d times q = 0 is)
            for (int j = 0; j < 32; j += LANES) {
                ByteVector q = ByteVector.fromByteBuffer(B, src, s + 2 + j, LE);
                FloatVector v = ((FloatVector) q.convertShape(VectorOperators.B2F, F, 0)).mul(d);
                IntVector bits = v.reinterpretAsInts();
                // round to nearest even as ATen does: (u + 0x7FFF + ((u >> 16) & 1)) >> 16, NaN -> Q8Fast.BF16_NAN
                IntVector r = bits.add(bits.lanewise(VectorOperators.LSHR, 16).and(1)).add(0x7FFF).lanewise(VectorOperators.LSHR, 16);
                if (!finite) r = r.blend(Q8Fast.BF16_NAN, v.test(VectorOperators.IS_NAN).cast(I));
                ShortVector h = (ShortVector) r.convertShape(VectorOperators.I2S, S, 0);
                h.intoByteBuffer(dst, o + 2 * j, LE);
            }
        }
    }
}
