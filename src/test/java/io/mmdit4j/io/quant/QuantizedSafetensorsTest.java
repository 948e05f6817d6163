package io.mmdit4j.io.quant;

import io.mmdit4j.GoldenData;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.io.SafetensorsWriter;
import io.mmdit4j.io.TensorSource;
import io.mmdit4j.io.WeightFiles;
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

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;

import static org.bytedeco.pytorch.global.torch.empty;
import static org.bytedeco.pytorch.global.torch.zeros;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * bitsandbytes and fp8 safetensors layouts: grouped into one weight each, and every inconsistency (a quant_state JSON
 * that does not match its tensors, a scale of the wrong shape or for a weight that is not fp8) refused when the file is
 * opened, with one message naming the file, the tensor and what was expected.
 */
class QuantizedSafetensorsTest {
    @TempDir
    Path tmp;

    @BeforeAll
    static void init() {
        Torch.init();
    }

    private static Tensor u8(byte[] b) {
        Tensor t = empty(new long[] {b.length}, new TensorOptions(ScalarType.Byte), new MemoryFormatOptional());
        if (b.length > 0) new BytePointer(t.data_ptr()).put(b);
        return t;
    }

    private static Tensor f32(long... shape) {
        return zeros(shape, new TensorOptions(ScalarType.Float));
    }

    /** A valid NF4 group for a [3, 70] weight (210 values: 105 bytes, 4 blocks), then {@code edit} applied. */
    private Path bnb(String name, String json, Consumer<Map<String, Tensor>> edit) {
        Map<String, Tensor> t = new LinkedHashMap<>();
        t.put("lin.weight", zeros(new long[] {105, 1}, new TensorOptions(ScalarType.Byte)));
        t.put("lin.weight.absmax", f32(4));
        t.put("lin.weight.quant_map", Tensors.fromFloats(CheckpointQuantizer.NF4, 16));
        t.put("lin.weight.quant_state.bitsandbytes__nf4", u8(json.getBytes(StandardCharsets.UTF_8)));
        t.put("lin.bias", f32(3));
        edit.accept(t);
        Path f = tmp.resolve(name);
        SafetensorsWriter.write(f, t);
        return f;
    }

    private static final String STATE = "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"bfloat16\", \"shape\": [3, 70]}";

    private static void refused(Path f, String... parts) {
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> WeightFiles.open(f).close());
        assertTrue(e.getMessage().startsWith(f + ": "), e.getMessage());
        for (String p : parts) assertTrue(e.getMessage().contains(p), "'" + p + "' not in: " + e.getMessage());
    }

    @Test
    void aValidGroupIsOneWeightOfTheJsonsShape() {
        try (TensorSource s = WeightFiles.open(bnb("ok.safetensors", STATE, t -> { })); PointerScope scope = new PointerScope()) {
            assertEquals(java.util.Set.of("lin.weight", "lin.bias"), s.keys());
            assertArrayEquals(new long[] {3, 70}, s.info("lin.weight").shape());
            assertEquals("NF4", s.info("lin.weight").format());
            assertEquals(ScalarType.BFloat16.value, s.load("lin.weight").scalar_type().value);
            try (QuantizedTensor q = s.quantized("lin.weight")) {
                assertEquals(210, q.numel());
            }
        }
    }

    @Test
    void stateJsonThatDoesNotMatchItsTensors() {
        refused(bnb("shape.safetensors", STATE.replace("[3, 70]", "[4, 70]"), t -> { }),
                "tensor 'lin.weight' is U8 [105, 1], but its quant_state needs U8 with 140 elements: the packed 4-bit codes of [4, 70]");
        refused(bnb("absmax.safetensors", STATE, t -> t.put("lin.weight.absmax", f32(5))),
                "tensor 'lin.weight.absmax' is F32 [5], but its quant_state needs F32 with 4 elements: one absmax per 64-value block");
        refused(bnb("type.safetensors", STATE.replace("nf4", "int8"), t -> { }),
                "bitsandbytes weight 'lin.weight': its quant_state has quant_type 'int8', expected \"nf4\" or \"fp4\"");
        refused(bnb("dtype.safetensors", STATE.replace("bfloat16", "float64"), t -> { }), "its quant_state has dtype \"float64\"");
        refused(bnb("json.safetensors", "{not json", t -> { }), "tensor 'lin.weight.quant_state.bitsandbytes__nf4' is not valid JSON");
        refused(bnb("map.safetensors", STATE, t -> t.remove("lin.weight.quant_map")), "missing tensor 'lin.weight.quant_map' (the 16-entry code table)");
        refused(bnb("nested.safetensors", STATE.replace("}", ", \"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": 0.5}"), t -> { }),
                "tensor 'lin.weight.absmax' is F32 [4], but its quant_state needs U8 with 4 elements: one 8-bit absmax code per 64-value block");
        refused(bnb("suffix.safetensors", STATE.replace("nf4", "fp4"), t -> { }), "its quant_state key says 'nf4' but the JSON says 'fp4'");
    }

    private Path fp8(String name, Consumer<Map<String, Tensor>> edit) {
        Map<String, Tensor> t = new LinkedHashMap<>();
        t.put("blk.weight", f32(4, 8).to(ScalarType.Float8_e4m3fn));
        t.put("blk.scale_weight", Tensors.fromFloats(new float[] {0.5f}).reshape(new long[0]));
        t.put("blk.scale_input", Tensors.fromFloats(new float[] {1f}).reshape(new long[0]));
        t.put("blk.bias", f32(4).to(ScalarType.BFloat16));
        t.put("scaled_fp8", empty(new long[] {0}, new TensorOptions(ScalarType.Float8_e4m3fn), new MemoryFormatOptional()));
        edit.accept(t);
        Path f = tmp.resolve(name);
        SafetensorsWriter.write(f, t);
        return f;
    }

    @Test
    void scaledFp8() {
        try (TensorSource s = WeightFiles.open(fp8("ok.safetensors", t -> { })); PointerScope scope = new PointerScope()) {
            assertEquals(java.util.Set.of("blk.weight", "blk.bias"), s.keys(), "scale_weight joins its weight; scale_input and the marker go");
            assertEquals("F8_E4M3 (scaled)", s.info("blk.weight").format());
        }
        refused(fp8("shape.safetensors", t -> t.put("blk.scale_weight", f32(4))),
                "tensor 'blk.scale_weight' is F32 [4], expected an F32 scalar (shape [] or [1]): the per-tensor scale of 'blk.weight'");
        refused(fp8("notfp8.safetensors", t -> t.put("blk.weight", f32(4, 8).to(ScalarType.BFloat16))),
                "tensor 'blk.scale_weight' scales 'blk.weight', which is BF16, expected F8_E4M3 or F8_E5M2");
        refused(fp8("orphan.safetensors", t -> t.remove("blk.weight")), "tensor 'blk.scale_weight' scales 'blk.weight', which the checkpoint does not hold");
    }

    /** The golden fp8 e4m3fn checkpoint: every tensor float8, every one converts exactly. */
    @Test
    void goldenFp8CheckpointIsReadAsIs() {
        Path f = GoldenData.root().resolve("fp8/models/dev-fp8-e4m3fn/flux1-tiny-dev-fp8-e4m3fn.safetensors");
        try (TensorSource s = WeightFiles.open(f); SafetensorsFile raw = SafetensorsFile.open(f); PointerScope scope = new PointerScope()) {
            assertEquals(raw.keys(), s.keys());
            for (String k : s.keys()) {
                assertEquals("F8_E4M3", s.info(k).format(), k);
                try (QuantizedTensor q = s.quantized(k)) {
                    assertTrue(q.dequantize(ScalarType.Float).equal(raw.load(k).to(ScalarType.Float)), k);
                }
            }
        }
    }
}
