package io.mmdit4j.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.runtime.Torch;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.bytedeco.pytorch.global.torch.empty;
import static org.bytedeco.pytorch.global.torch.equal;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Safetensors reading, writing, sharding and the validation of malformed files. */
class SafetensorsTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    @BeforeAll
    static void init() {
        Torch.init();
    }

    // ---------------------------------------------------------------- helpers

    /** fp32 tensor 0.25*i - 3 for i in [0, numel), with some values that bf16/fp16 represent exactly. */
    private static Tensor ramp(long... shape) {
        long n = 1;
        for (long s : shape) n *= s;
        float[] v = new float[(int) n];
        for (int i = 0; i < v.length; i++) v[i] = 0.25f * i - 3f;
        return Tensors.fromFloats(v, shape);
    }

    private static Tensor longs(long[] values, long... shape) {
        Tensor t = empty(shape, new TensorOptions(ScalarType.Long), new MemoryFormatOptional());
        if (values.length > 0) t.data_ptr_long().put(values);
        return t;
    }

    private static long[] toLongs(Tensor t) {
        Tensor c = t.contiguous();
        long[] out = new long[(int) c.numel()];
        if (out.length > 0) {
            LongPointer p = c.data_ptr_long();
            p.get(out);
        }
        return out;
    }

    /** A raw safetensors file: 8-byte little-endian header length, the header text, then the data bytes. */
    private Path raw(String name, long headerLength, String header, byte[] data) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(headerLength).put(h).put(data);
        Path f = tmp.resolve(name);
        Files.write(f, b.array());
        return f;
    }

    private Path raw(String name, String header, byte[] data) throws IOException {
        return raw(name, header.getBytes(StandardCharsets.UTF_8).length, header, data);
    }

    private static ModelFormatException bad(Executable e, Path file, String... fragments) {
        ModelFormatException ex = assertThrows(ModelFormatException.class, e);
        String m = ex.getMessage();
        assertTrue(m.contains(file.toString()), () -> "message should name the file " + file + ": " + m);
        for (String f : fragments) assertTrue(m.contains(f), () -> "message should contain '" + f + "': " + m);
        return ex;
    }

    private static ModelFormatException badOpen(Path file, String... fragments) {
        return bad(() -> SafetensorsFile.open(file).close(), file, fragments);
    }

    private static long headerLength(Path f) throws IOException {
        byte[] b = Files.readAllBytes(f);
        return ByteBuffer.wrap(b, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
    }

    private static JsonNode headerJson(Path f) throws IOException {
        byte[] b = Files.readAllBytes(f);
        int n = (int) headerLength(f);
        return JSON.readTree(new String(b, 8, n, StandardCharsets.UTF_8));
    }

    // ---------------------------------------------------------------- round trips

    @Test
    void roundTripAllDtypesWithMetadata() throws IOException {
        Path f = tmp.resolve("round.safetensors");
        long[] ids = {Long.MIN_VALUE, -1, 0, 7, 1L << 40, Long.MAX_VALUE};
        Map<String, String> meta = Map.of("format", "pt", "note", "héllo");
        try (PointerScope s = new PointerScope()) {
            Map<String, Tensor> in = new LinkedHashMap<>(); // deliberately not in name order
            in.put("z.f32", ramp(3, 5));
            in.put("b.bf16", ramp(4, 2).to(ScalarType.BFloat16));
            in.put("m.f16", ramp(7).to(ScalarType.Half));
            in.put("a.i64", longs(ids, 2, 3));
            in.put("s.scalar", Tensors.fromFloats(new float[] {2.5f}));
            in.put("e.empty", Tensors.fromFloats(new float[0], 0, 3));
            in.put("t.transposed", ramp(3, 4).t()); // non-contiguous input
            SafetensorsWriter.write(f, in, meta);

            try (SafetensorsFile sf = SafetensorsFile.open(f)) {
                assertEquals(new java.util.TreeSet<>(in.keySet()), sf.keys());
                assertEquals(meta, sf.header().metadata());
                assertEquals(DType.F32, sf.info("z.f32").dtype());
                assertEquals(DType.BF16, sf.info("b.bf16").dtype());
                assertEquals(DType.F16, sf.info("m.f16").dtype());
                assertEquals(DType.I64, sf.info("a.i64").dtype());
                for (String k : List.of("z.f32", "b.bf16", "m.f16", "s.scalar", "e.empty", "t.transposed")) {
                    Tensor want = in.get(k);
                    Tensor got = sf.load(k);
                    assertEquals(Tensors.dtype(want), Tensors.dtype(got), k);
                    assertArrayEquals(Tensors.shape(want), Tensors.shape(got), k);
                    assertArrayEquals(Tensors.toFloats(want), Tensors.toFloats(got), k);
                    assertTrue(equal(want, got), k);
                }
                Tensor scalar = sf.load("s.scalar");
                assertEquals(0, scalar.dim());
                assertEquals(2.5f, Tensors.toFloats(scalar)[0]);
                assertEquals(0, sf.load("e.empty").numel());
                assertArrayEquals(new long[] {0, 3}, sf.info("e.empty").shape());

                Tensor i64 = sf.load("a.i64");
                assertEquals(DType.I64, Tensors.dtype(i64));
                assertArrayEquals(new long[] {2, 3}, Tensors.shape(i64));
                assertArrayEquals(ids, toLongs(i64));
            }
        }
        long n = headerLength(f);
        assertEquals(0, n % 8, "header length " + n + " must be a multiple of 8");
        assertEquals(0, (8 + n) % 8, "data section must start 8-byte aligned");

        JsonNode h = headerJson(f);
        List<String> names = new ArrayList<>();
        for (Iterator<String> it = h.fieldNames(); it.hasNext(); ) {
            String k = it.next();
            if (!k.equals("__metadata__")) names.add(k);
        }
        List<String> sorted = new ArrayList<>(names);
        sorted.sort(null);
        assertEquals(sorted, names, "tensor names must be sorted in the header");
        long prevEnd = 0;
        for (String k : names) { // data laid out contiguously in name order
            JsonNode off = h.get(k).get("data_offsets");
            assertEquals(prevEnd, off.get(0).asLong(), k);
            prevEnd = off.get(1).asLong();
        }
        assertEquals(Files.size(f), 8 + n + prevEnd, "file size");
        assertEquals("pt", h.get("__metadata__").get("format").asText());
    }

    @Test
    void writerReplacesAtomicallyAndLeavesNoPartFiles() throws IOException {
        Path f = tmp.resolve("x.safetensors");
        try (PointerScope s = new PointerScope()) {
            SafetensorsWriter.write(f, Map.of("a", ramp(4)));
            SafetensorsWriter.write(f, Map.of("b", ramp(2, 2)));
            try (SafetensorsFile sf = SafetensorsFile.open(f)) {
                assertEquals(java.util.Set.of("b"), sf.keys());
            }
        }
        try (var list = Files.list(tmp)) {
            assertEquals(List.of(f), list.toList());
        }
    }

    // ---------------------------------------------------------------- zero copy

    @Test
    void loadsAreViewsOfOnePrivateMapping() throws IOException {
        Path f = tmp.resolve("zc.safetensors");
        try (PointerScope s = new PointerScope()) {
            SafetensorsWriter.write(f, Map.of("a", ramp(8), "b", ramp(2, 3)));
        }
        byte[] before = Files.readAllBytes(f);
        try (PointerScope s = new PointerScope(); SafetensorsFile sf = SafetensorsFile.open(f)) {
            Tensor a1 = sf.load("a");
            Tensor a2 = sf.load("a");
            Tensor b = sf.load("b");
            assertTrue(a1.is_alias_of(a2), "two loads of a key share storage");
            assertTrue(a1.is_alias_of(b), "tensors of one file share the file's mapping");
            assertEquals(a1.data_ptr().address(), a2.data_ptr().address());
            // The storage is the whole file, and the tensor sits at its offset in it.
            assertEquals(Files.size(f), a1.storage().nbytes());
            TensorInfo ia = sf.info("a");
            assertEquals(sf.header().dataStart() + ia.begin(), a1.data_ptr().address() - a1.storage().data().address());
            TensorInfo ib = sf.info("b");
            assertEquals(sf.header().dataStart() + ib.begin(), b.data_ptr().address() - b.storage().data().address());

            float[] orig = Tensors.toFloats(a1);
            a1.mul_(new Scalar(2.0));
            float[] doubled = Tensors.toFloats(a2);
            for (int i = 0; i < orig.length; i++) assertEquals(orig[i] * 2, doubled[i], "view sees the in-place write");

            // A fresh reader sees the original data: the write stayed in the private mapping.
            try (SafetensorsFile again = SafetensorsFile.open(f)) {
                assertArrayEquals(orig, Tensors.toFloats(again.load("a")));
            }
        }
        assertArrayEquals(before, Files.readAllBytes(f), "in-place writes must never reach the file");
    }

    @Test
    void tensorsOutliveTheirFile() throws IOException {
        Path f = tmp.resolve("live.safetensors");
        try (PointerScope s = new PointerScope()) {
            SafetensorsWriter.write(f, Map.of("a", ramp(5)));
            Tensor a;
            float[] want;
            try (SafetensorsFile sf = SafetensorsFile.open(f)) {
                a = sf.load("a");
                want = Tensors.toFloats(a);
            }
            assertArrayEquals(want, Tensors.toFloats(a));
            assertEquals(-3f, want[0]);
        }
    }

    @Test
    void unalignedDataIsCopiedNotMisread() throws IOException {
        // Header of odd length (no padding), so the F32 data starts at an odd file offset.
        String header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}}";
        assertNotEquals(0, (8 + header.length()) % 4);
        ByteBuffer data = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN).putFloat(1.5f).putFloat(-2f).putFloat(1e-3f);
        Path f = raw("unaligned.safetensors", header, data.array());
        try (PointerScope s = new PointerScope(); SafetensorsFile sf = SafetensorsFile.open(f)) {
            assertArrayEquals(new float[] {1.5f, -2f, 1e-3f}, Tensors.toFloats(sf.load("a")));
        }
    }

    @Test
    void missingKeyIsAFormatError() throws IOException {
        Path f = tmp.resolve("k.safetensors");
        try (PointerScope s = new PointerScope()) {
            SafetensorsWriter.write(f, Map.of("a", ramp(2)));
            try (SafetensorsFile sf = SafetensorsFile.open(f)) {
                assertEquals(null, sf.info("nope"));
                bad(() -> sf.load("nope"), f, "'nope'");
            }
        }
    }

    // ---------------------------------------------------------------- sharded

    private Path writeShards(Path dir, String indexJson) throws IOException {
        Files.createDirectories(dir);
        try (PointerScope s = new PointerScope()) {
            SafetensorsWriter.write(dir.resolve("model-00001-of-00002.safetensors"), Map.of("a", ramp(2, 2), "b", ramp(3)));
            SafetensorsWriter.write(dir.resolve("model-00002-of-00002.safetensors"),
                    Map.of("c", ramp(4).to(ScalarType.BFloat16)));
        }
        Path index = dir.resolve("model.safetensors.index.json");
        Files.writeString(index, indexJson);
        return index;
    }

    @Test
    void shardedFolderOpensThroughIndex() throws IOException {
        Path dir = tmp.resolve("sharded");
        writeShards(dir, "{\"metadata\":{\"total_size\":32},\"weight_map\":{"
                + "\"a\":\"model-00001-of-00002.safetensors\",\"b\":\"model-00001-of-00002.safetensors\","
                + "\"c\":\"model-00002-of-00002.safetensors\"}}");
        try (PointerScope s = new PointerScope(); TensorSource src = WeightFiles.open(dir)) {
            assertTrue(src instanceof ShardedSafetensors, src.getClass().getName());
            assertEquals(java.util.Set.of("a", "b", "c"), src.keys());
            assertArrayEquals(new long[] {2, 2}, src.info("a").shape());
            assertEquals(DType.BF16, src.info("c").dtype());
            assertArrayEquals(Tensors.toFloats(ramp(2, 2)), Tensors.toFloats(src.load("a")));
            assertArrayEquals(Tensors.toFloats(ramp(3)), Tensors.toFloats(src.load("b")));
            assertArrayEquals(new float[] {-3f, -2.75f, -2.5f, -2.25f}, Tensors.toFloats(src.load("c")));
            assertTrue(src.origin().endsWith("model.safetensors.index.json"), src.origin());
            assertEquals(null, src.info("d"));
            ModelFormatException e = assertThrows(ModelFormatException.class, () -> src.load("d"));
            assertTrue(e.getMessage().contains("'d'"), e.getMessage());
        }
    }

    @Test
    void indexNamingAKeyItsShardLacksIsRejected() throws IOException {
        Path dir = tmp.resolve("badindex");
        Path index = writeShards(dir, "{\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\","
                + "\"c\":\"model-00001-of-00002.safetensors\"}}");
        bad(() -> WeightFiles.open(dir).close(), index, "'c'", "model-00001-of-00002.safetensors", "no such tensor");
    }

    @Test
    void indexNamingAMissingShardIsRejected() throws IOException {
        Path dir = tmp.resolve("noshard");
        Path index = writeShards(dir, "{\"weight_map\":{\"a\":\"model-00003-of-00002.safetensors\"}}");
        bad(() -> WeightFiles.open(dir).close(), index, "'model-00003-of-00002.safetensors'", "'a'", "does not exist");
    }

    @Test
    void shardsOutsideTheFolderAreRejected() throws IOException {
        Path dir = tmp.resolve("escape");
        Path index = writeShards(dir, "{\"weight_map\":{\"a\":\"/etc/passwd\"}}");
        bad(() -> WeightFiles.open(dir).close(), index, "outside the folder");
    }

    @Test
    void trailingGarbageAndDuplicateNamesAreCorruptHeaders() throws IOException {
        String one = "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}";
        Path trailing = raw("trailing.safetensors", "{" + one + "} garbage", new byte[4]);
        bad(() -> SafetensorsFile.open(trailing), trailing, "not valid JSON");
        Path dup = raw("dup.safetensors", "{" + one + "," + one + "}", new byte[4]);
        bad(() -> SafetensorsFile.open(dup), dup, "not valid JSON", "Duplicate");
    }

    @Test
    void indexWithoutWeightMapIsRejected() throws IOException {
        Path dir = tmp.resolve("nomap");
        Path index = writeShards(dir, "{\"metadata\":{}}");
        bad(() -> WeightFiles.open(dir).close(), index, "weight_map");
    }

    // ---------------------------------------------------------------- folders

    @Test
    void emptyFolderIsRejected() throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("empty"));
        Files.writeString(dir.resolve("config.json"), "{}");
        bad(() -> WeightFiles.open(dir).close(), dir, "no .safetensors weights");
    }

    @Test
    void folderWithTwoUnrelatedFilesIsRejected() throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("two"));
        try (PointerScope s = new PointerScope()) {
            SafetensorsWriter.write(dir.resolve("first.safetensors"), Map.of("a", ramp(2)));
            SafetensorsWriter.write(dir.resolve("second.safetensors"), Map.of("b", ramp(2)));
        }
        bad(() -> WeightFiles.open(dir).close(), dir, "several weight files", "first.safetensors", "second.safetensors");
    }

    @Test
    void folderWithOneFileOrThePreferredNameOpensIt() throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("one"));
        try (PointerScope s = new PointerScope()) {
            SafetensorsWriter.write(dir.resolve("whatever.safetensors"), Map.of("a", ramp(2)));
            try (TensorSource src = WeightFiles.open(dir)) {
                assertEquals(java.util.Set.of("a"), src.keys());
            }
            SafetensorsWriter.write(dir.resolve("diffusion_pytorch_model.safetensors"), Map.of("p", ramp(2)));
            try (TensorSource src = WeightFiles.open(dir)) {
                assertEquals(java.util.Set.of("p"), src.keys());
            }
        }
        Path nowhere = tmp.resolve("does-not-exist");
        bad(() -> WeightFiles.open(nowhere).close(), nowhere, "no such file");
    }

    // ---------------------------------------------------------------- malformed files

    @Test
    void fileShorterThanTheLengthPrefix() throws IOException {
        Path f = tmp.resolve("short.safetensors");
        Files.write(f, new byte[] {1, 2, 3, 4, 5});
        badOpen(f, "5 bytes", "expected at least 8");
        Path empty = tmp.resolve("empty.safetensors");
        Files.write(empty, new byte[0]);
        badOpen(empty, "0 bytes", "expected at least 8");
    }

    @Test
    void truncatedDataSection() throws IOException {
        Path f = tmp.resolve("trunc.safetensors");
        try (PointerScope s = new PointerScope()) {
            SafetensorsWriter.write(f, Map.of("a", ramp(4), "b", ramp(16)));
        }
        long full = Files.size(f);
        try (RandomAccessFile r = new RandomAccessFile(f.toFile(), "rw")) {
            r.setLength(full - 10); // cuts into b's data: a [0,16), b [16,80)
        }
        long dataLen = full - 10 - 8 - headerLength(f);
        badOpen(f, "'b'", "[16, 80]", "outside the data section", "(" + dataLen + " bytes)", "truncated");
    }

    @Test
    void headerLengthLargerThanTheFile() throws IOException {
        String header = "{}";
        Path f = raw("biglen.safetensors", 1000, header, new byte[0]);
        long size = Files.size(f);
        badOpen(f, "header length 1000", "(" + size + " bytes", "expected at most " + (size - 8));
        // A length with the top bit set must not turn into a negative allocation.
        Path g = raw("neglen.safetensors", -1L, header, new byte[0]);
        badOpen(g, "header length 18446744073709551615", "expected at most");
    }

    @Test
    void headerNotJson() throws IOException {
        badOpen(raw("notjson.safetensors", "{\"a\": [1, 2", new byte[0]), "not valid JSON");
        badOpen(raw("garbage.safetensors", "\u0000\u0001binary!", new byte[0]), "not valid JSON");
        badOpen(raw("array.safetensors", "[1, 2, 3]", new byte[0]), "must be a JSON object");
    }

    @Test
    void offsetsOutsideTheData() throws IOException {
        Path f = raw("outside.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[100],\"data_offsets\":[0,400]}}", new byte[16]);
        badOpen(f, "'a'", "[0, 400]", "outside the data section (16 bytes)");
        Path g = raw("reversed.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", new byte[16]);
        badOpen(g, "'a'", "[8, 4]", "not a valid range");
        Path h = raw("negoff.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", new byte[16]);
        badOpen(h, "'a'", "not a valid range");
        Path k = raw("threeoff.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", new byte[16]);
        badOpen(k, "'a'", "data_offsets must be [begin, end]");
    }

    @Test
    void overlappingTensors() throws IOException {
        Path f = raw("overlap.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                + "\"y\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", new byte[24]);
        badOpen(f, "'x'", "'y'", "[0, 16)", "[8, 24)", "overlap");
        // Adjacent tensors and zero-size ones anywhere are fine.
        Path ok = raw("adjacent.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"y\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]},"
                + "\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,8]}}", new byte[16]);
        SafetensorsFile.open(ok).close();
    }

    @Test
    void byteLengthNotMatchingDtypeAndShape() throws IOException {
        Path f = raw("size.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", new byte[16]);
        badOpen(f, "'a'", "hold 12 bytes", "F32 [2, 2] needs 16");
        Path g = raw("size16.safetensors", "{\"a\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,12]}}", new byte[16]);
        badOpen(g, "'a'", "hold 12 bytes", "BF16 [3] needs 6");
    }

    @Test
    void unknownDtype() throws IOException {
        for (String dt : List.of("F8_E8M0", "F4", "X99")) { // F8_E4M3 and F8_E5M2 are read (fp8 checkpoints)
            Path f = raw("dt_" + dt + ".safetensors", "{\"a\":{\"dtype\":\"" + dt + "\",\"shape\":[4],\"data_offsets\":[0,4]}}",
                    new byte[8]);
            badOpen(f, "'a'", "unsupported dtype '" + dt + "'", "expected one of", "F32", "BF16");
        }
        badOpen(raw("nodtype.safetensors", "{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", new byte[8]), "'a'", "missing dtype");
    }

    @Test
    void negativeOrNonIntegerShape() throws IOException {
        for (String shape : List.of("[-1, 4]", "[2.5]", "[\"2\"]", "[null]")) {
            Path f = raw("shape" + Math.abs(shape.hashCode()) + ".safetensors",
                    "{\"a\":{\"dtype\":\"F32\",\"shape\":" + shape + ",\"data_offsets\":[0,8]}}", new byte[8]);
            badOpen(f, "'a'", "must hold non-negative integers");
        }
        badOpen(raw("noshape.safetensors", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", new byte[8]), "'a'", "missing shape");
        // Dimensions whose product overflows a long must not wrap round to a small byte count.
        badOpen(raw("huge.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296, 4294967296],\"data_offsets\":[0,0]}}",
                new byte[8]), "'a'", "too large");
    }

    @Test
    void metadataMustBeAnObject() throws IOException {
        badOpen(raw("meta.safetensors", "{\"__metadata__\":[1]}", new byte[0]), "__metadata__");
    }

    @Test
    void missingFile() {
        Path f = tmp.resolve("absent.safetensors");
        badOpen(f, "no such file");
    }

    @Test
    void validRawFileStillOpens() throws IOException {
        // Guards the helpers above: the same construction with consistent numbers must be accepted.
        ByteBuffer data = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < 4; i++) data.putFloat(i + 0.5f);
        Path f = raw("good.safetensors", "{\"__metadata__\":{\"k\":\"v\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}  ",
                data.array());
        try (PointerScope s = new PointerScope(); SafetensorsFile sf = SafetensorsFile.open(f)) {
            assertEquals(Map.of("k", "v"), sf.header().metadata());
            assertArrayEquals(new float[] {0.5f, 1.5f, 2.5f, 3.5f}, Tensors.toFloats(sf.load("a")));
            assertFalse(sf.keys().contains("__metadata__"));
            assertEquals(Arrays.asList("a"), new ArrayList<>(sf.keys()));
        }
    }
}
