package io.mmdit4j.io.quant;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.mmdit4j.io.FileErrors;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.io.TensorInfo;
import io.mmdit4j.io.TensorSource;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * The quantized layouts of safetensors checkpoints, presented as one tensor per weight:
 * <ul>
 * <li><b>fp8</b> ({@code F8_E4M3}, {@code F8_E5M2}): every float8 tensor is quantized ({@link Fp8Tensor});</li>
 * <li><b>ComfyUI scaled fp8</b>: {@code <layer>.scale_weight} (an fp32 scalar) joins the float8 {@code <layer>.weight};
 * {@code <layer>.scale_input} (used only by ComfyUI's fp8×fp8 matmul) and the {@code scaled_fp8} marker are dropped;</li>
 * <li><b>bitsandbytes 4-bit</b> as diffusers saves it: {@code <m>.weight} (packed codes) with {@code .absmax},
 * {@code .quant_map}, optional {@code .nested_absmax} / {@code .nested_quant_map} and the
 * {@code .quant_state.bitsandbytes__nf4|fp4} JSON becomes one {@code <m>.weight} of the JSON's shape ({@link Bnb4Tensor}).</li>
 * </ul>
 * Every group is checked when the checkpoint is opened (the quant_state JSON against the tensors, scale shapes), with
 * errors that name the file, the tensor and what was expected. Other tensors pass through unchanged.
 */
public final class QuantizedSafetensors implements TensorSource {
    private static final String SCALE_WEIGHT = ".scale_weight", SCALE_INPUT = ".scale_input", SCALED_FP8 = "scaled_fp8";
    private static final String QUANT_STATE = ".quant_state.bitsandbytes__";
    private static final String[] BNB_PARTS = {".absmax", ".quant_map", ".nested_absmax", ".nested_quant_map"};
    private static final ObjectMapper JSON = new ObjectMapper();

    private final TensorSource raw;
    private final Map<String, TensorInfo> infos;
    private final Map<String, String> scaleOf;              // weight key -> its scale_weight key
    private final Map<String, Bnb> bnb;                      // weight key -> group

    private record Bnb(String weight, Bnb4Tensor.State state, long[] shape, boolean nested) {}

    private QuantizedSafetensors(TensorSource raw, Map<String, TensorInfo> infos, Map<String, String> scaleOf, Map<String, Bnb> bnb) {
        this.raw = raw;
        this.infos = infos;
        this.scaleOf = scaleOf;
        this.bnb = bnb;
    }

    /** Whether {@code source} holds any of these layouts (otherwise it is used as it is). */
    public static boolean applies(TensorSource source) {
        for (String k : source.keys()) {
            if (k.equals(SCALED_FP8) || k.endsWith(SCALE_WEIGHT) || k.contains(QUANT_STATE)) return true;
            TensorInfo i = source.info(k);
            if (i != null && i.dtype().isFp8()) return true;
        }
        return false;
    }

    /** {@code source} with its quantized layouts grouped, or {@code source} itself when it has none; owns {@code source}. */
    public static TensorSource of(TensorSource source) {
        if (!applies(source)) return source;
        try {
            return group(source);
        } catch (RuntimeException e) {
            source.close();
            throw e;
        }
    }

    private static TensorSource group(TensorSource src) {
        String origin = src.origin();
        Map<String, TensorInfo> infos = new TreeMap<>();
        Map<String, String> scaleOf = new LinkedHashMap<>();
        Map<String, Bnb> bnb = new LinkedHashMap<>();
        Set<String> consumed = new java.util.HashSet<>();
        for (String k : src.keys()) {
            int q = k.indexOf(QUANT_STATE);
            if (q < 0) continue;
            String weight = k.substring(0, q);
            Bnb g = bnbGroup(src, origin, weight, k);
            bnb.put(weight, g);
            consumed.add(k);
            consumed.add(weight);
            for (String p : BNB_PARTS) consumed.add(weight + p);
            long stored = 0;
            for (String part : new String[] {weight, weight + ".absmax", weight + ".quant_map", weight + ".nested_absmax", weight + ".nested_quant_map"}) {
                if (src.info(part) != null) stored += src.info(part).byteLength();
            }
            infos.put(weight, new TensorInfo(weight, DType.of(g.state.dtype()), g.shape, 0, stored, g.state.quantType().toUpperCase(java.util.Locale.ROOT)));
        }
        for (String k : src.keys()) {
            if (!k.endsWith(SCALE_WEIGHT) || consumed.contains(k)) continue;
            String weight = k.substring(0, k.length() - SCALE_WEIGHT.length()) + ".weight";
            TensorInfo w = src.info(weight), s = src.info(k);
            if (w == null) {
                throw new ModelFormatException(origin + ": tensor " + FileErrors.quote(k) + " scales " + FileErrors.quote(weight)
                        + ", which the checkpoint does not hold");
            }
            if (!w.dtype().isFp8()) {
                throw new ModelFormatException(origin + ": tensor " + FileErrors.quote(k) + " scales " + FileErrors.quote(weight) + ", which is "
                        + w.dtype().safetensorsName() + ", expected F8_E4M3 or F8_E5M2 (a scaled fp8 weight)");
            }
            if (s.numel() != 1 || s.shape().length > 1 || !s.dtype().isFloatingPoint() || s.dtype().isFp8()) {
                throw new ModelFormatException(origin + ": tensor " + FileErrors.quote(k) + " is " + s.dtype().safetensorsName() + " "
                        + Arrays.toString(s.shape()) + ", expected an F32 scalar (shape [] or [1]): the per-tensor scale of " + FileErrors.quote(weight));
            }
            scaleOf.put(weight, k);
            consumed.add(k);
            consumed.add(k.substring(0, k.length() - SCALE_WEIGHT.length()) + SCALE_INPUT);
        }
        consumed.add(SCALED_FP8);
        for (String k : src.keys()) {
            if (consumed.contains(k) && !scaleOf.containsKey(k)) continue;
            if (k.endsWith(SCALE_INPUT) && src.info(k.substring(0, k.length() - SCALE_INPUT.length()) + ".weight") != null) continue;
            TensorInfo i = src.info(k);
            if (i.dtype().isFp8()) {
                String scale = scaleOf.get(k);
                long bytes = i.byteLength() + (scale != null ? src.info(scale).byteLength() : 0);
                infos.put(k, new TensorInfo(k, scale != null ? DType.F32 : i.dtype(), i.shape(), i.begin(), i.begin() + bytes,
                        i.dtype().safetensorsName() + (scale != null ? " (scaled)" : "")));
            } else {
                infos.put(k, i);
            }
        }
        return new QuantizedSafetensors(src, Collections.unmodifiableMap(infos), scaleOf, bnb);
    }

    /** The bitsandbytes group of {@code weight}, its quant_state JSON checked against its tensors. */
    private static Bnb bnbGroup(TensorSource src, String origin, String weight, String stateKey) {
        String suffixType = stateKey.substring(stateKey.indexOf(QUANT_STATE) + QUANT_STATE.length());
        String what = "bitsandbytes weight " + FileErrors.quote(weight);
        JsonNode json = stateJson(src, origin, stateKey);
        String quantType = json.path("quant_type").asText("");
        if (!quantType.equals("nf4") && !quantType.equals("fp4")) {
            throw bad(origin, what, "its quant_state has quant_type " + FileErrors.quote(quantType) + ", expected \"nf4\" or \"fp4\"");
        }
        if (!quantType.equals(suffixType)) {
            throw bad(origin, what, "its quant_state key says " + FileErrors.quote(suffixType) + " but the JSON says " + FileErrors.quote(quantType));
        }
        int blocksize = json.path("blocksize").asInt(-1);
        if (blocksize < 2 || blocksize % 2 != 0 || blocksize > 4096) {
            throw bad(origin, what, "its quant_state has blocksize " + json.path("blocksize") + ", expected an even number in 2..4096 (bitsandbytes uses 64)");
        }
        ScalarType dtype = switch (json.path("dtype").asText("")) {
            case "float32" -> ScalarType.Float;
            case "bfloat16" -> ScalarType.BFloat16;
            case "float16" -> ScalarType.Half;
            default -> throw bad(origin, what, "its quant_state has dtype " + json.path("dtype") + ", expected \"float32\", \"bfloat16\" or \"float16\"");
        };
        JsonNode sh = json.path("shape");
        if (!sh.isArray() || sh.size() == 0 || sh.size() > 8) throw bad(origin, what, "its quant_state has shape " + sh + ", expected a list of dimensions");
        long[] shape = new long[sh.size()];
        long n = 1;
        for (int i = 0; i < shape.length; i++) {
            if (!sh.get(i).canConvertToLong() || sh.get(i).longValue() < 0) throw bad(origin, what, "its quant_state has shape " + sh + ", expected non-negative integers");
            shape[i] = sh.get(i).longValue();
            try {
                n = Math.multiplyExact(n, shape[i]);
            } catch (ArithmeticException e) {
                throw bad(origin, what, "its quant_state shape " + sh + " is too large");
            }
        }
        long blocks = (n + blocksize - 1) / blocksize;
        expect(src, origin, weight, "U8", (n + 1) / 2, "the packed 4-bit codes of " + Arrays.toString(shape) + " (" + n + " values, two per byte)");
        expect(src, origin, weight + ".quant_map", "F32", 16, "the 16-entry code table");
        boolean nested = src.info(weight + ".nested_absmax") != null || src.info(weight + ".nested_quant_map") != null || json.has("nested_offset");
        int nestedBlocksize = 0;
        float offset = 0;
        if (nested) {
            nestedBlocksize = json.path("nested_blocksize").asInt(-1);
            if (nestedBlocksize < 1) throw bad(origin, what, "its quant_state has nested_blocksize " + json.path("nested_blocksize") + ", expected a positive integer");
            if (!json.path("nested_offset").isNumber()) throw bad(origin, what, "its quant_state has no numeric nested_offset (double quantization)");
            if (!json.path("nested_dtype").asText("float32").equals("float32")) {
                throw bad(origin, what, "its quant_state has nested_dtype " + json.path("nested_dtype") + ", expected \"float32\"");
            }
            offset = (float) json.path("nested_offset").asDouble();
            expect(src, origin, weight + ".absmax", "U8", blocks, "one 8-bit absmax code per " + blocksize + "-value block");
            expect(src, origin, weight + ".nested_absmax", "F32", (blocks + nestedBlocksize - 1) / nestedBlocksize,
                    "one scale per " + nestedBlocksize + " blocks");
            expect(src, origin, weight + ".nested_quant_map", "F32", 256, "the 256-entry table of the absmax codes");
        } else {
            expect(src, origin, weight + ".absmax", "F32", blocks, "one absmax per " + blocksize + "-value block");
        }
        return new Bnb(weight, new Bnb4Tensor.State(quantType, blocksize, dtype, nestedBlocksize, offset), shape, nested);
    }

    private static JsonNode stateJson(TensorSource src, String origin, String key) {
        TensorInfo i = src.info(key);
        if (i.dtype() != DType.U8 || i.shape().length != 1) {
            throw new ModelFormatException(origin + ": tensor " + FileErrors.quote(key) + " is " + i.dtype().safetensorsName() + " "
                    + Arrays.toString(i.shape()) + ", expected U8 [n] (the quant_state JSON)");
        }
        if (i.numel() > (1 << 20)) throw new ModelFormatException(origin + ": tensor " + FileErrors.quote(key) + " holds " + i.numel() + " bytes, too many for a quant_state JSON");
        byte[] bytes = new byte[(int) i.numel()];
        try (PointerScope scope = new PointerScope(); Tensor loaded = src.load(key)) {
            Tensor t = loaded.contiguous();
            if (bytes.length > 0) new BytePointer(t.data_ptr()).get(bytes);
        }
        try {
            JsonNode n = JSON.readTree(new String(bytes, StandardCharsets.UTF_8));
            if (n == null || !n.isObject()) throw new ModelFormatException(origin + ": tensor " + FileErrors.quote(key) + " is not a JSON object");
            return n;
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new ModelFormatException(origin + ": tensor " + FileErrors.quote(key) + " is not valid JSON: " + FileErrors.printable(e.getOriginalMessage()));
        }
    }

    private static void expect(TensorSource src, String origin, String key, String dtype, long numel, String meaning) {
        TensorInfo i = src.info(key);
        if (i == null) throw new ModelFormatException(origin + ": missing tensor " + FileErrors.quote(key) + " (" + meaning + ")");
        if (!i.dtype().safetensorsName().equals(dtype) || i.numel() != numel) {
            throw new ModelFormatException(origin + ": tensor " + FileErrors.quote(key) + " is " + i.dtype().safetensorsName() + " "
                    + Arrays.toString(i.shape()) + ", but its quant_state needs " + dtype + " with " + numel + " elements: " + meaning);
        }
    }

    private static ModelFormatException bad(String origin, String what, String why) {
        return new ModelFormatException(origin + ": " + what + ": " + why);
    }

    @Override
    public Set<String> keys() {
        return infos.keySet();
    }

    @Override
    public TensorInfo info(String key) {
        return infos.get(key);
    }

    @Override
    public String origin() {
        return raw.origin();
    }

    @Override
    public Tensor load(String key) {
        TensorInfo i = infos.get(key);
        if (i == null) throw new ModelFormatException(origin() + ": no tensor " + FileErrors.quote(key));
        if (!i.quantized() || (i.dtype().isFp8() && !scaleOf.containsKey(key))) return raw.load(key); // fp8 converts exactly on take
        try (QuantizedTensor q = quantized(key)) {
            return q.dequantize(q.valueType());
        }
    }

    @Override
    public QuantizedTensor quantized(String key) {
        Bnb g = bnb.get(key);
        if (g != null) return bnb(g);
        TensorInfo i = infos.get(key);
        if (i == null || !i.quantized()) return null;
        String scale = scaleOf.get(key);
        try (PointerScope scope = new PointerScope()) {
            Tensor codes = raw.load(key);
            Tensor s = scale == null ? null : raw.load(scale).to(ScalarType.Float).reshape(new long[0]);
            return new Fp8Tensor(Tensors.keep(codes), s == null ? null : Tensors.keep(s));
        }
    }

    private QuantizedTensor bnb(Bnb g) {
        String w = g.weight();
        try (PointerScope scope = new PointerScope()) {
            Tensor packed = raw.load(w).reshape(-1);
            Tensor absmax = raw.load(w + ".absmax").reshape(-1);
            Tensor map = raw.load(w + ".quant_map").reshape(-1);
            Tensor nAbs = g.nested() ? raw.load(w + ".nested_absmax").reshape(-1) : null;
            Tensor nMap = g.nested() ? raw.load(w + ".nested_quant_map").reshape(-1) : null;
            return new Bnb4Tensor(g.shape(), g.state(), Tensors.keep(packed), Tensors.keep(absmax), Tensors.keep(map),
                    nAbs == null ? null : Tensors.keep(nAbs), nMap == null ? null : Tensors.keep(nMap));
        }
    }

    @Override
    public void close() {
        raw.close();
    }
}
