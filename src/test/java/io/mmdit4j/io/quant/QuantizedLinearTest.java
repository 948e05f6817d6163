package io.mmdit4j.io.quant;

import io.mmdit4j.io.gguf.GgufQuantizer;
import io.mmdit4j.io.gguf.GgufTensor;
import io.mmdit4j.io.gguf.GgufType;
import io.mmdit4j.nn.Linear;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.runtime.Torch;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.DeviceOptional;
import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.bytedeco.pytorch.global.torch.cat;
import static org.bytedeco.pytorch.global.torch.createCPUGenerator;
import static org.bytedeco.pytorch.global.torch.empty;
import static org.bytedeco.pytorch.global.torch.linear;
import static org.bytedeco.pytorch.global.torch.randn;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Quantized Linears: the chunked per-forward dequantization equals a GEMM on the whole dequantized weight, row views
 * and stacks of quantized data equal slices of the whole, low-rank terms add and come off exactly, and the whole path
 * runs on the meta device (real-size dry runs).
 */
class QuantizedLinearTest {
    @BeforeAll
    static void init() {
        Torch.init();
    }

    /** A Q8_0 tensor [out, in] of seeded values. */
    static GgufTensor q8(long out, long in, long seed) {
        float[] x = new float[(int) (out * in)];
        Random r = new Random(seed);
        for (int i = 0; i < x.length; i++) x[i] = (float) (r.nextGaussian() * 0.05);
        byte[] q = new byte[(int) GgufType.Q8_0.bytes(x.length)];
        GgufQuantizer.quantize(GgufType.Q8_0, x, 0, x.length, q, 0);
        Tensor t = empty(new long[] {q.length / 34, 34}, new TensorOptions(ScalarType.Byte), new MemoryFormatOptional());
        new BytePointer(t.data_ptr()).put(q);
        return new GgufTensor(GgufType.Q8_0, new long[] {out, in}, t);
    }

    private static Tensor randomInput(long... shape) {
        Generator g = createCPUGenerator(3);
        return randn(shape, new GeneratorOptional(g), new TensorOptions(ScalarType.Float));
    }

    private static double maxRel(Tensor a, Tensor b) {
        return a.sub(b).abs().max().item_float() / b.abs().max().item_float();
    }

    @Test
    void chunkedForwardEqualsTheGemmOnTheWholeDequantizedWeight() {
        long out = 3000, in = 1024; // 3.1 M elements: two chunks of 2 M
        GgufTensor q = q8(out, in, 1);
        assertTrue(q.rowChunk(Linear.CHUNK_ELEMENTS) < out, "more than one chunk");
        try (PointerScope scope = new PointerScope()) {
            Tensor bias = randomInput(out).mul(new Scalar(0.1));
            Tensor w = q.dequantize(ScalarType.Float);
            try (Linear l = new Linear(q, Tensors.keep(bias.clone()))) {
                Tensor x = randomInput(2, 5, in);
                Tensor expected = linear(x, w, new org.bytedeco.pytorch.TensorOptional(bias));
                Tensor y = l.forward(x);
                assertArrayEquals(new long[] {2, 5, out}, Tensors.shape(y));
                assertTrue(maxRel(y, expected) < 1e-5, "chunked vs whole: " + maxRel(y, expected));
                Tensor a = x.narrow(-1, 0, 300), b = x.narrow(-1, 300, in - 300);
                assertTrue(maxRel(l.forwardConcat(a.contiguous(), b.contiguous()), expected) < 1e-5, "concatenated input");
                try (Linear nb = new Linear(q8(out, in, 1), null)) { // a bf16 model's bias would be bf16: here none
                    Tensor yb = nb.forward(x.to(ScalarType.BFloat16));
                    assertEquals(ScalarType.BFloat16.value, yb.scalar_type().value);
                    Tensor e = linear(x, w);
                    assertTrue(maxRel(yb.to(ScalarType.Float), e) < 2e-2, "bf16: " + maxRel(yb.to(ScalarType.Float), e));
                }
                // the bf16 weight chunk is the exact fp32 value rounded once
                assertTrue(q.dequantizeRows(7, 40, ScalarType.BFloat16).equal(w.narrow(0, 7, 40).to(ScalarType.BFloat16)));
            }
        }
    }

    @Test
    void rowViewsAndStacksEqualSlicesOfTheWhole() {
        try (PointerScope scope = new PointerScope()) {
            GgufTensor full = q8(96, 64, 2);
            Tensor w = full.dequantize(ScalarType.Float);
            QuantizedTensor a = q8(96, 64, 2).rows(64, 32), b = q8(96, 64, 2).rows(0, 64);
            try (QuantizedTensor swapped = QuantizedTensor.concatRows(a, b)) {
                Tensor expected = cat(new TensorVector(w.narrow(0, 64, 32), w.narrow(0, 0, 64)), 0);
                assertTrue(swapped.dequantize(ScalarType.Float).equal(expected));
                assertTrue(swapped.dequantizeRows(20, 30, ScalarType.Float).equal(expected.narrow(0, 20, 30)), "across the two parts");
                assertTrue(swapped.dequantizeRows(3, 20, ScalarType.Float).equal(expected.narrow(0, 3, 20)), "inside one part (crashed)");
                assertEquals(full.storedBytes(), swapped.storedBytes());
            }
            full.close();
        }
    }

    @Test
    void bitsandbytesChunksStayOnBlockBoundaries() {
        // 13 columns: rows of 13 values cross the 64-value blocks, so a chunk must be a multiple of 64 rows
        long out = 300, in = 13, n = out * in, blocks = (n + 63) / 64;
        try (PointerScope scope = new PointerScope()) {
            Tensor packed = Tensors.keep(empty(new long[] {(n + 1) / 2}, new TensorOptions(ScalarType.Byte), new MemoryFormatOptional()).random_(0, new org.bytedeco.pytorch.LongOptional(256)));
            Tensor absmax = Tensors.keep(randomInput(blocks).abs());
            Tensor map = Tensors.keep(Tensors.fromFloats(CheckpointQuantizer.NF4, 16));
            try (Bnb4Tensor q = new Bnb4Tensor(new long[] {out, in}, new Bnb4Tensor.State("nf4", 64, ScalarType.BFloat16, 0, 0), packed, absmax, map, null, null)) {
                long chunk = q.rowChunk(1000);
                assertEquals(0, chunk * in % 64, chunk + " rows");
                Tensor whole = q.dequantize(ScalarType.Float);
                assertTrue(q.dequantizeRows(chunk, out - chunk, ScalarType.Float).equal(whole.narrow(0, chunk, out - chunk)));
                assertTrue(q.dequantizeRows(5, 3, ScalarType.Float).equal(whole.narrow(0, 5, 3)), "unaligned rows decode their blocks");
                assertEquals(ScalarType.BFloat16.value, q.dequantize(q.valueType()).scalar_type().value);
                assertTrue(whole.equal(whole.to(ScalarType.BFloat16).to(ScalarType.Float)), "values are rounded to the state's dtype");
            }
        }
    }

    @Test
    void scaledFp8IsTheCodeTimesTheScaleInFp32() {
        try (PointerScope scope = new PointerScope()) {
            Tensor x = randomInput(8, 16).mul(new Scalar(100));
            Tensor codes = x.to(ScalarType.Float8_e4m3fn);
            Tensor scale = Tensors.fromFloats(new float[] {0.0123f}).reshape(new long[0]);
            try (Fp8Tensor q = new Fp8Tensor(Tensors.keep(codes.clone()), Tensors.keep(scale.clone()))) {
                assertTrue(q.dequantize(ScalarType.Float).equal(codes.to(ScalarType.Float).mul(scale)));
                assertEquals("F8_E4M3 (scaled)", q.format());
            }
            try (Fp8Tensor plain = new Fp8Tensor(Tensors.keep(codes.clone()), null)) {
                assertTrue(plain.dequantize(ScalarType.BFloat16).equal(codes.to(ScalarType.Float).to(ScalarType.BFloat16)), "exact in bf16");
            }
        }
    }

    @Test
    void lowRankTermsAddAndComeOffBitExactly() {
        long out = 96, in = 64;
        try (PointerScope scope = new PointerScope(); Linear l = new Linear(q8(out, in, 4), null)) {
            Tensor x = randomInput(3, in);
            Tensor before = l.forward(x);
            Tensor down = randomInput(4, in).mul(new Scalar(0.1)), up = randomInput(out, 4).mul(new Scalar(0.1));
            Linear.LowRank term = l.addLowRank(Tensors.keep(down.clone()), Tensors.keep(up.clone()));
            Tensor with = l.forward(x);
            Tensor expected = before.add(linear(linear(x, down), up));
            assertTrue(maxRel(with, expected) < 1e-6);
            Tensor concat = l.forwardConcat(x.narrow(1, 0, 10).contiguous(), x.narrow(1, 10, in - 10).contiguous());
            assertTrue(maxRel(concat, expected) < 1e-5, "the low-rank term also on a concatenated input");
            assertTrue(l.removeLowRank(term));
            assertTrue(l.forward(x).equal(before), "removed: bit-identical to before");
            assertThrows(IllegalStateException.class, l::weight, "a quantized Linear has no plain weight");
            assertThrows(IllegalArgumentException.class, () -> l.addLowRank(Tensors.keep(down.clone()), Tensors.keep(randomInput(out + 1, 4))));
        }
    }

    @Test
    void realSizeQuantizedLinearsRunOnMeta() {
        try (PointerScope scope = new PointerScope(); Device meta = new Device("meta")) {
            for (GgufType t : new GgufType[] {GgufType.Q8_0, GgufType.Q4_K, GgufType.Q6_K, GgufType.Q2_K, GgufType.Q3_K, GgufType.Q5_K, GgufType.Q4_0, GgufType.Q5_1}) {
                try (Linear l = new Linear(GgufTensor.meta(t, new long[] {21504, 3072}), null)) {
                    Tensor x = empty(new long[] {1, 4608, 3072}, new TensorOptions(ScalarType.BFloat16).device(new DeviceOptional(meta)), new MemoryFormatOptional());
                    Tensor y = l.forward(x);
                    assertTrue(y.is_meta(), t.name());
                    assertArrayEquals(new long[] {1, 4608, 21504}, Tensors.shape(y), t.name());
                    assertEquals(21504L * 3072 / t.blockElements() * t.blockBytes(), l.weightBytes(), t.name());
                }
            }
        }
    }
}
