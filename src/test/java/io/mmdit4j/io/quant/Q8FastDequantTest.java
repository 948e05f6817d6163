package io.mmdit4j.io.quant;

import io.mmdit4j.io.gguf.GgufTensor;
import io.mmdit4j.io.gguf.GgufType;
import io.mmdit4j.nn.Linear;
import io.mmdit4j.runtime.Torch;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.bytedeco.pytorch.global.torch.empty;
import static org.bytedeco.pytorch.global.torch.equal;
import static org.bytedeco.pytorch.global.torch.randn;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The fused Q8_0 dequantizer ({@link Q8Fast}) gives the tensor-op path's values bit for bit (bf16 and fp32, random blocks
 * and every kind of fp16 scale: subnormal, zero, infinite, NaN; q = -128 and 127; ranges that start and end anywhere on
 * a block boundary; ranges split over threads), is taken where it applies, and falls back to the tensor ops where it
 * does not (switched off, not whole blocks, other dtypes, non-contiguous blocks, the meta device).
 */
class Q8FastDequantTest {
    /** fp16 scales worth covering: subnormals, ±0, the smallest normal, the largest finite, ±inf, quiet and signalling NaNs. */
    private static final int[] EDGE_SCALES = {0x0001, 0x8001, 0x03FF, 0x0000, 0x8000, 0x0400, 0x7BFF, 0xFBFF, 0x7C00, 0xFC00,
            0x7E00, 0xFE00, 0x7C01, 0x7D55, 0x3C00, 0x1400, 0x2E66};

    @BeforeAll
    static void init() {
        Torch.init();
        assertTrue(Q8Fast.AVAILABLE, "the tests run with --add-modules jdk.incubator.vector (surefire's argLine) on AVX2 or wider");
    }

    @AfterEach
    void reset() {
        Q8Fast.setEnabled(true);
    }

    /** {@code n} Q8_0 blocks: random scales and quants, with the edge scales and quants mixed in. */
    private static byte[] blocks(int n, long seed) {
        Random r = new Random(seed);
        byte[] b = new byte[n * 34];
        r.nextBytes(b);
        for (int i = 0; i < n; i++) {
            int h;
            switch (r.nextInt(4)) {
                case 0: h = EDGE_SCALES[r.nextInt(EDGE_SCALES.length)]; break;
                case 1: h = r.nextInt(0x10000); break;                                  // anything, NaNs included
                default: h = (0x1800 + r.nextInt(0x1C00)) | (r.nextBoolean() ? 0x8000 : 0); // typical weights' scales
            }
            b[i * 34] = (byte) h;
            b[i * 34 + 1] = (byte) (h >>> 8);
            if (r.nextInt(8) == 0) b[i * 34 + 2 + r.nextInt(32)] = (byte) -128;
            if (r.nextInt(8) == 0) b[i * 34 + 2 + r.nextInt(32)] = 127;
        }
        for (int i = 0; i < Math.min(n, EDGE_SCALES.length); i++) { // every edge scale at least once, with every extreme quant
            b[i * 34] = (byte) EDGE_SCALES[i];
            b[i * 34 + 1] = (byte) (EDGE_SCALES[i] >>> 8);
            b[i * 34 + 2] = (byte) -128;
            b[i * 34 + 3] = 127;
            b[i * 34 + 4] = 0;
            b[i * 34 + 5] = -1;
        }
        return b;
    }

    private static Tensor byteTensor(byte[] data, long rows, long cols) {
        Tensor t = empty(new long[] {rows, cols}, new TensorOptions(ScalarType.Byte), new MemoryFormatOptional());
        new BytePointer(t.data_ptr()).put(data);
        return t;
    }

    private static GgufTensor q8(int blocks, long seed, long cols) {
        return new GgufTensor(GgufType.Q8_0, new long[] {blocks * 32L / cols, cols}, byteTensor(blocks(blocks, seed), blocks, 34));
    }

    /**
     * Whether two tensors of one dtype hold the same bits: all of them for fp32; for bf16 all but a NaN's, which must be
     * a NaN in both (the tensor ops write ATen's vectorized NaN, all ones, or c10's scalar 0x7FC0 at the tail of each
     * thread's share; the fast path writes all ones).
     */
    private static boolean sameBits(Tensor a, Tensor b) {
        if (!Dequant.same(a.scalar_type(), b.scalar_type())) return false;
        if (a.element_size() == 4) return equal(a.view(ScalarType.Int), b.view(ScalarType.Int));
        Tensor bitsEqual = a.view(ScalarType.Short).eq(b.view(ScalarType.Short));
        Tensor bothNan = a.isnan().logical_and(b.isnan());
        return bitsEqual.logical_or(bothNan).all().item_bool();
    }

    /** elements(first, count, dtype) by the fast path (asserted taken) and by the tensor ops. */
    private static void assertSame(QuantizedTensor q, long first, long count, ScalarType dtype) {
        try (PointerScope scope = new PointerScope()) {
            long before = Q8Fast.TAKEN.get();
            Tensor fast = q.elements(first, count, dtype);
            assertTrue(Q8Fast.TAKEN.get() > before, "fast path taken for [" + first + ", +" + count + ") " + dtype);
            Q8Fast.setEnabled(false);
            Tensor ops = q.elements(first, count, dtype);
            Q8Fast.setEnabled(true);
            assertEquals(count, fast.numel());
            assertTrue(sameBits(fast, ops), "bit-identical for [" + first + ", +" + count + ") " + dtype);
        }
    }

    @Test
    void equalsTheTensorOpsBitForBit() {
        try (GgufTensor q = q8(1000, 1, 64)) {
            for (ScalarType dtype : new ScalarType[] {ScalarType.BFloat16, ScalarType.Float}) {
                assertSame(q, 0, q.numel(), dtype);
                assertSame(q, 32, 32, dtype);                 // one block
                assertSame(q, 7 * 32, 13 * 32, dtype);        // odd block boundaries
                assertSame(q, q.numel() - 96, 96, dtype);     // the tail
            }
        }
    }

    @Test
    void rowChunksViewsAndStacksEqualTheTensorOps() {
        try (GgufTensor a = q8(300, 2, 96); GgufTensor b = q8(120, 3, 96)) {
            QuantizedTensor stack = QuantizedTensor.concatRows(a.rows(5, 60), b);  // row views inside a stack
            try (PointerScope scope = new PointerScope()) {
                for (ScalarType dtype : new ScalarType[] {ScalarType.BFloat16, ScalarType.Float}) {
                    for (long r0 = 0; r0 < stack.rows(); r0 += 37) {
                        long n = Math.min(37, stack.rows() - r0);
                        Tensor fast = stack.dequantizeRows(r0, n, dtype);
                        Q8Fast.setEnabled(false);
                        Tensor ops = stack.dequantizeRows(r0, n, dtype);
                        Q8Fast.setEnabled(true);
                        assertTrue(sameBits(fast, ops), "rows [" + r0 + ", +" + n + ") " + dtype);
                    }
                }
            }
            stack.close();
        }
    }

    @Test
    void largeRangesSplitOverThreadsEqualTheTensorOps() {
        int threads = Torch.threads();
        try {
            Torch.setThreads(3); // three parts, whatever the machine
            try (GgufTensor q = q8(3 * 2048 + 77, 4, 32)) {
                assertSame(q, 0, q.numel(), ScalarType.BFloat16);
                assertSame(q, 32 * 5, q.numel() - 32 * 9, ScalarType.Float);
            }
        } finally {
            Torch.setThreads(threads);
        }
    }

    @Test
    void everyScaleAndQuantEqualsTheTensorOps() { // all 65,536 fp16 scales, each with q = -128..127 spread over its block
        byte[] b = new byte[65536 * 8 * 34];
        for (int h = 0; h < 65536; h++) {
            for (int k = 0; k < 8; k++) {
                int o = (h * 8 + k) * 34;
                b[o] = (byte) h;
                b[o + 1] = (byte) (h >>> 8);
                for (int j = 0; j < 32; j++) b[o + 2 + j] = (byte) (k * 32 + j - 128);
            }
        }
        try (GgufTensor q = new GgufTensor(GgufType.Q8_0, new long[] {65536 * 8, 32}, byteTensor(b, 65536 * 8, 34))) {
            assertSame(q, 0, q.numel(), ScalarType.BFloat16);
            assertSame(q, 0, q.numel(), ScalarType.Float);
        }
    }

    @Test
    void fallsBackWhereItDoesNotApply() {
        try (GgufTensor q = q8(200, 5, 32); PointerScope scope = new PointerScope()) {
            long before = Q8Fast.TAKEN.get();
            Q8Fast.setEnabled(false);
            Tensor off = q.elements(0, q.numel(), ScalarType.BFloat16);
            Q8Fast.setEnabled(true);
            Tensor partial = q.elements(5, 100, ScalarType.BFloat16);     // not whole blocks
            Tensor half = q.elements(0, q.numel(), ScalarType.Half);      // a dtype it does not write
            assertEquals(before, Q8Fast.TAKEN.get(), "no fast path when switched off, for part blocks, for fp16");
            assertTrue(sameBits(off, q.elements(0, q.numel(), ScalarType.BFloat16)));
            assertTrue(sameBits(partial, off.narrow(0, 5, 100)));
            assertEquals(q.numel(), half.numel());
        }
        // blocks that are a strided view (rows of 40 bytes, 34 used): the tensor ops
        byte[] wide = new byte[200 * 40];
        byte[] packed = blocks(200, 6);
        for (int i = 0; i < 200; i++) System.arraycopy(packed, i * 34, wide, i * 40, 34);
        try (PointerScope scope = new PointerScope()) {
            Tensor strided = byteTensor(wide, 200, 40).narrow(1, 0, 34);
            assertFalse(strided.is_contiguous());
            long before = Q8Fast.TAKEN.get();
            try (GgufTensor q = new GgufTensor(GgufType.Q8_0, new long[] {200, 32}, io.mmdit4j.runtime.Tensors.keep(strided));
                 GgufTensor p = new GgufTensor(GgufType.Q8_0, new long[] {200, 32}, byteTensor(packed, 200, 34))) {
                Tensor viaOps = q.elements(0, q.numel(), ScalarType.BFloat16);
                assertEquals(before, Q8Fast.TAKEN.get(), "strided blocks take the tensor ops");
                assertTrue(sameBits(viaOps, p.elements(0, p.numel(), ScalarType.BFloat16)));
            }
        }
        // the meta device: the tensor ops, which give a meta tensor
        try (GgufTensor m = GgufTensor.meta(GgufType.Q8_0, new long[] {64, 64}); PointerScope scope = new PointerScope()) {
            long before = Q8Fast.TAKEN.get();
            Tensor t = m.elements(0, m.numel(), ScalarType.BFloat16);
            assertTrue(t.is_meta());
            assertEquals(before, Q8Fast.TAKEN.get());
        }
    }

    @Test
    void quantizedLinearForwardIsUnchanged() {
        try (PointerScope scope = new PointerScope()) {
            Tensor x = randn(new long[] {3, 5, 256}).to(ScalarType.BFloat16);
            byte[] data = blocks(512 * 256 / 32, 7);
            for (int i = 0; i < data.length; i += 34) { // finite weights: a NaN would make the comparison vacuous
                int h = (0x1800 + (i / 34) % 0x1C00);
                data[i] = (byte) h;
                data[i + 1] = (byte) (h >>> 8);
            }
            try (GgufTensor w = new GgufTensor(GgufType.Q8_0, new long[] {512, 256}, byteTensor(data, data.length / 34, 34));
                 Linear lin = new Linear(w.rows(0, 512), null)) {
                long before = Q8Fast.TAKEN.get();
                Tensor fast = lin.forward(x);
                assertTrue(Q8Fast.TAKEN.get() > before);
                Q8Fast.setEnabled(false);
                Tensor ops = lin.forward(x);
                Q8Fast.setEnabled(true);
                assertTrue(sameBits(fast, ops));
            }
        }
    }

    @Test
    void repeatedForwardsLeaveNoNativeObjectsBehind() { // the fast path's buffers, pointers and pool hand-offs are all released
        byte[] data = blocks(512 * 256 / 32, 9);
        try (PointerScope scope = new PointerScope();
             GgufTensor w = new GgufTensor(GgufType.Q8_0, new long[] {512, 256}, byteTensor(data, data.length / 34, 34));
             Linear lin = new Linear(w.rows(0, 512), null)) {
            Tensor x = randn(new long[] {2, 7, 256}).to(ScalarType.BFloat16);
            long before = Q8Fast.TAKEN.get();
            long left = io.mmdit4j.pipeline.NativeObjects.perRun(() -> {
                for (int i = 0; i < 20; i++) {
                    try (PointerScope run = new PointerScope()) {
                        lin.forward(x);
                    }
                }
            });
            assertTrue(Q8Fast.TAKEN.get() - before >= 14 * 20, "the fast path ran");
            assertTrue(left <= 0, left + " native objects left per 20 forwards");
        }
    }
}
