package io.mmdit4j.io.gguf;

import io.mmdit4j.GoldenData;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.io.TensorInfo;
import io.mmdit4j.io.WeightFiles;
import io.mmdit4j.io.quant.QuantizedTensor;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.runtime.Torch;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;

import static org.bytedeco.pytorch.global.torch.empty;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The GGUF reader against the golden {@code gguf/} data (every dequantized tensor bit for bit), the writer and ggml's
 * reference quantizers (byte-identical to llama-quantize's files for the same F16/BF16 input), and bad files: each refused
 * with one message naming the file, the tensor and what was expected.
 */
class GgufReaderTest {
    @TempDir
    Path tmp;

    @BeforeAll
    static void init() {
        Torch.init();
    }

    @Test
    void everyDequantCaseExactly() throws IOException {
        int compared = 0;
        try (Stream<Path> s = Files.list(GoldenData.root().resolve("gguf/cases"))) {
            for (Path dir : s.filter(d -> d.getFileName().toString().startsWith("dequant_")).sorted().toList()) {
                try (GgufFile f = GgufFile.open(dir.resolve("tensors.gguf")); SafetensorsFile out = SafetensorsFile.open(dir.resolve("outputs.safetensors"));
                     PointerScope scope = new PointerScope()) {
                    for (String k : f.keys()) {
                        Tensor expected = out.load(k);
                        Tensor actual = f.load(k).to(ScalarType.Float);
                        assertArrayEquals(Tensors.shape(expected), Tensors.shape(actual), dir + " " + k);
                        assertTrue(actual.equal(expected), dir.getFileName() + " " + k + " differs");
                        QuantizedTensor q = f.quantized(k);
                        if (q != null) {
                            assertEquals(f.info(k).byteLength(), q.storedBytes());
                            // a chunk of rows equals the same rows of the whole
                            long rows = q.rows(), first = rows / 2;
                            Tensor part = q.dequantizeRows(first, rows - first, ScalarType.Float);
                            assertTrue(part.equal(actual.narrow(0, first, rows - first)), k + " rows");
                            q.close();
                        }
                        compared++;
                    }
                }
            }
        }
        assertTrue(compared >= 40, compared + " tensors");
    }

    /** Quantizing the F16/BF16 files' values gives the Q8_0/Q4_0/Q5_1/Q4_1/Q5_0 files' bytes (llama-quantize's reference paths). */
    @Test
    void quantizersMatchLlamaQuantizeByteForByte() {
        Path models = GoldenData.root().resolve("gguf/models");
        int tensors = 0;
        for (String[] c : new String[][] {{"dev/flux1-dev-F16.gguf", "dev/flux1-dev-Q8_0.gguf"}, {"dev/flux1-dev-F16.gguf", "dev/flux1-dev-Q4_0.gguf"},
                {"dev/flux1-dev-F16.gguf", "dev/flux1-dev-Q5_1.gguf"}, {"schnell-bf16/flux1-schnell-bf16-BF16.gguf", "schnell-bf16/flux1-schnell-bf16-Q4_1.gguf"},
                {"schnell-bf16/flux1-schnell-bf16-BF16.gguf", "schnell-bf16/flux1-schnell-bf16-Q5_0.gguf"}}) {
            try (GgufFile src = GgufFile.open(models.resolve(c[0])); GgufFile q = GgufFile.open(models.resolve(c[1])); PointerScope scope = new PointerScope()) {
                for (String k : q.keys()) {
                    GgufHeader.Info t = q.header().tensors().get(k);
                    if (!t.type().quantized()) continue;
                    float[] x = Tensors.toFloats(src.load(k));
                    byte[] mine = new byte[(int) t.byteLength()];
                    GgufQuantizer.quantize(t.type(), x, 0, x.length, mine, 0);
                    byte[] theirs = bytes(((GgufTensor) q.quantized(k)).blocks());
                    assertArrayEquals(theirs, mine, c[1] + " " + k);
                    tensors++;
                }
            }
        }
        assertTrue(tensors >= 5 * 20, tensors + " tensors");
    }

    /** K-quants: the writer's blocks dequantize within the format's step of the input, and the file reads back. */
    @Test
    void writerRoundTripsEveryWrittenType() {
        Random r = new Random(7);
        float[] x = new float[4 * 512];
        for (int i = 0; i < x.length; i++) x[i] = (float) (r.nextGaussian() * (i % 97 == 0 ? 1.0 : 0.05));
        List<GgufWriter.Spec> specs = new ArrayList<>();
        Map<String, Tensor> data = new LinkedHashMap<>();
        for (GgufType t : GgufType.values()) {
            if (!GgufQuantizer.writes(t)) continue;
            byte[] q = new byte[(int) t.bytes(x.length)];
            GgufQuantizer.quantize(t, x, 0, x.length, q, 0);
            specs.add(new GgufWriter.Spec("w." + t, t, new long[] {4, 512}));
            data.put("w." + t, fromBytes(q));
        }
        specs.add(new GgufWriter.Spec("f32", GgufType.F32, new long[] {3, 5}));
        data.put("f32", Tensors.fromFloats(new float[15], 3, 5));
        specs.add(new GgufWriter.Spec("conv", GgufType.Q8_0, new long[] {1, 32}));
        byte[] q = new byte[34];
        GgufQuantizer.quantize(GgufType.Q8_0, x, 0, 32, q, 0);
        data.put("conv", fromBytes(q));
        Map<String, GgufWriter.Kv> kv = new LinkedHashMap<>();
        kv.put("general.architecture", GgufWriter.Kv.string("flux"));
        kv.put("comfy.gguf.orig_shape.conv", GgufWriter.Kv.i32s(2, 4, 2, 2));
        Path file = tmp.resolve("written.gguf");
        GgufWriter.write(file, kv, specs, s -> data.get(s.name()));
        try (GgufFile f = (GgufFile) WeightFiles.open(file); PointerScope scope = new PointerScope()) {
            assertEquals("flux", f.header().string("general.architecture"));
            assertArrayEquals(new long[] {2, 4, 2, 2}, f.info("conv").shape());
            for (GgufWriter.Spec s : specs) {
                if (!s.type().quantized() || s.name().equals("conv")) continue;
                float[] back = Tensors.toFloats(f.load(s.name()));
                double tol = switch (s.type()) {
                    case Q8_0 -> 0.01;
                    case Q6_K, Q5_1, Q5_K -> 0.04;
                    case Q5_0 -> 0.07; // symmetric: the side opposite the block's extreme is clipped by up to a step
                    case Q4_0 -> 0.13;
                    default -> 0.09;
                };
                double worst = 0;
                for (int i = 0; i < x.length; i++) {
                    // relative to the largest value of the block (K-quants: of the 256-element super-block, whose 6-bit scales
                    // are relative to its largest sub-block scale)
                    int be = s.type().blockElements();
                    double scale = 0;
                    for (int j = i / be * be; j < i / be * be + be; j++) scale = Math.max(scale, Math.abs(x[j]));
                    worst = Math.max(worst, Math.abs(back[i] - x[i]) / Math.max(scale, 1e-6));
                }
                assertTrue(worst < tol, s.type() + ": worst error " + worst + " of the block scale");
            }
        }
    }

    // ------------------------------------------------------------------ bad files

    /** A small valid file: one Q8_0 [2, 64] tensor "w" and one F32 [4] tensor "b". */
    private Path valid() {
        byte[] q = new byte[2 * 2 * 34];
        float[] x = new float[128];
        for (int i = 0; i < x.length; i++) x[i] = i / 100f;
        GgufQuantizer.quantize(GgufType.Q8_0, x, 0, 128, q, 0);
        Map<String, Tensor> data = Map.of("w", fromBytes(q), "b", Tensors.fromFloats(new float[4], 4));
        Path file = tmp.resolve("valid.gguf");
        GgufWriter.write(file, Map.of("general.architecture", GgufWriter.Kv.string("flux")),
                List.of(new GgufWriter.Spec("w", GgufType.Q8_0, new long[] {2, 64}), new GgufWriter.Spec("b", GgufType.F32, new long[] {4})),
                s -> data.get(s.name()));
        return file;
    }

    private static void refused(Path file, String... parts) {
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> GgufFile.open(file).close());
        assertTrue(e.getMessage().startsWith(file + ": "), e.getMessage());
        for (String p : parts) assertTrue(e.getMessage().contains(p), "'" + p + "' not in: " + e.getMessage());
    }

    /** Offset of the tensor info of {@code name} (its name string's length field) in the header. */
    private static int infoOffset(byte[] b, String name) {
        byte[] n = name.getBytes();
        for (int i = 24; i + 8 + n.length <= b.length; i++) {
            if (ByteBuffer.wrap(b, i, 8).order(ByteOrder.LITTLE_ENDIAN).getLong() == n.length
                    && new String(b, i + 8, n.length).equals(name) && b[i + 8 + n.length] <= 4 && b[i + 8 + n.length] >= 1) return i;
        }
        throw new IllegalStateException(name);
    }

    private Path patched(Path file, String out, int at, long value, int width) throws IOException {
        byte[] b = Files.readAllBytes(file);
        for (int i = 0; i < width; i++) b[at + i] = (byte) (value >>> (8 * i));
        Path p = tmp.resolve(out);
        Files.write(p, b);
        return p;
    }

    @Test
    void unknownTypeIdNamesTheTensorAndTheSupportedTypes() throws IOException {
        Path f = valid();
        byte[] b = Files.readAllBytes(f);
        int w = infoOffset(b, "w") + 8 + 1 + 4 + 2 * 8; // name, n_dims, 2 dims -> type
        refused(patched(f, "type.gguf", w, 99, 4), "tensor 'w' has unknown GGML type id 99", "supported: F32 (0)", "Q8_0 (8)");
        refused(patched(f, "iq.gguf", w, 20, 4), "tensor 'w' is stored as IQ4_NL (GGML type 20), which mmdit4j does not read");
    }

    @Test
    void versionOtherThanThree() throws IOException {
        Path f = valid();
        refused(patched(f, "v2.gguf", 4, 2, 4), "GGUF version 2 is not supported (expected 3)");
        refused(patched(f, "be.gguf", 4, 0x03000000L, 4), "big-endian");
        refused(patched(f, "magic.gguf", 0, 0x46554746L, 4), "not a GGUF file", "expected the magic 47475546");
    }

    @Test
    void truncatedFilesNameWhatIsCut() throws IOException {
        Path f = valid();
        byte[] b = Files.readAllBytes(f);
        Path data = tmp.resolve("cut-data.gguf");
        Files.write(data, java.util.Arrays.copyOf(b, b.length - 40));
        refused(data, "tensor 'w' (Q8_0 [2, 64], 136 bytes at data offset 32) ends past the data section (152 bytes)", "the file is truncated");
        Path head = tmp.resolve("cut-head.gguf");
        Files.write(head, java.util.Arrays.copyOf(b, 120));
        refused(head, "the file ends inside its header, in dimension 0 of tensor 'w' (at byte 114 of 120): the file is truncated");
        Path counts = tmp.resolve("cut-counts.gguf");
        Files.write(counts, java.util.Arrays.copyOf(b, 30));
        refused(counts, "the tensor count is 2, more than the rest of the file (14 bytes) can hold: the file is truncated or its header corrupt");
    }

    @Test
    void byteSizeDisagreeingWithTypeAndShape() throws IOException {
        Path f = valid();
        byte[] b = Files.readAllBytes(f);
        int w = infoOffset(b, "w") + 8 + 1 + 4;
        // b (data offset 0, before w at 32) becomes F32 [12] = 48 bytes: its data would run into w's
        refused(patched(f, "size.gguf", infoOffset(b, "b") + 8 + 1 + 4, 12, 8), "tensor 'w' [32, 168) overlaps tensor 'b' [0, 48)",
                "its data would be 48 bytes for F32 [12]", "the sizes disagree with the offsets");
        refused(patched(f, "long.gguf", w, 96, 8), "tensor 'w' (Q8_0 [2, 96], 204 bytes at data offset 32) ends past the data section (192 bytes)");
        refused(patched(f, "rows.gguf", w, 40, 8), "tensor 'w' is Q8_0 with rows of 40 elements, which is not a whole number of its 32-element blocks");
        int bOff = infoOffset(b, "b") + 8 + 1 + 4 + 8 + 4;
        refused(patched(f, "align.gguf", bOff, 170, 8), "tensor 'b': data offset 170 is not a multiple of the alignment 32");
        refused(patched(f, "count.gguf", 8, 1L << 40, 8), "the tensor count is 1099511627776, more than the rest of the file");
    }

    @Test
    void origShapeMustHoldTheSameElements() {
        byte[] q = new byte[34];
        GgufQuantizer.quantize(GgufType.Q8_0, new float[32], 0, 32, q, 0);
        Path file = tmp.resolve("orig.gguf");
        GgufWriter.write(file, Map.of("comfy.gguf.orig_shape.w", GgufWriter.Kv.i32s(3, 11)),
                List.of(new GgufWriter.Spec("w", GgufType.Q8_0, new long[] {1, 32})), s -> fromBytes(q));
        refused(file, "metadata 'comfy.gguf.orig_shape.w' [3, 11] holds 33 elements, but tensor 'w' holds 32");
    }

    @Test
    void floatTensorsAreViewsAndNotQuantized() {
        try (GgufFile f = GgufFile.open(valid()); PointerScope scope = new PointerScope()) {
            TensorInfo b = f.info("b");
            assertNull(b.format());
            assertNull(f.quantized("b"));
            assertEquals("Q8_0", f.info("w").format());
            assertEquals(2 * 2 * 34, f.info("w").byteLength());
        }
    }

    static Tensor fromBytes(byte[] q) {
        Tensor t = empty(new long[] {q.length}, new TensorOptions(ScalarType.Byte), new MemoryFormatOptional());
        new BytePointer(t.data_ptr()).put(q);
        return t;
    }

    static byte[] bytes(Tensor t) {
        Tensor c = t.contiguous();
        byte[] b = new byte[(int) c.numel()];
        new BytePointer(c.data_ptr()).get(b);
        return b;
    }
}
