package io.mmdit4j.golden;

import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.io.TensorSource;
import io.mmdit4j.io.WeightFiles;
import io.mmdit4j.io.quant.Fp8;
import io.mmdit4j.io.quant.QuantizedTensor;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The quantized-checkpoint areas' value-level cases: {@code gguf_dequant} (every tensor of a GGUF file dequantized to
 * fp32), {@code bnb4_dequant} (bitsandbytes 4-bit Linear groups dequantized to their stated dtype, and the fp32 products
 * before that cast as {@code <name>.fp32}) and {@code fp8_codes} (all 256 codes of e4m3fn and e5m2 decoded and classified,
 * and fp32 values encoded). Compared exactly, as the cases ask.
 */
public final class QuantizedCases {
    private QuantizedCases() {}

    /** {@code gguf_dequant}: {@code model.gguf_file}, every tensor through the reader's own dequantizer. */
    public static final CaseRunner GGUF_DEQUANT = c -> dequant(c, "gguf_file");

    /** {@code bnb4_dequant}: {@code model.weights_file}, every Linear group. */
    public static final CaseRunner BNB4_DEQUANT = c -> dequant(c, "weights_file");

    /** {@code fp8_codes}: decoding and encoding of both fp8 formats. */
    public static final CaseRunner FP8_CODES = QuantizedCases::fp8Codes;

    private static List<CaseResult> dequant(GoldenCase c, String modelKey) {
        String rel = c.spec().path("model").path(modelKey).asText("");
        if (rel.isEmpty()) return List.of(CaseResult.error(c.name(), "-", "case names no model." + modelKey));
        Path file = c.resolve(rel);
        if (!Files.exists(file)) return List.of(CaseResult.error(c.name(), "-", "model not found: " + file));
        Map<String, Tensor> actual = new HashMap<>();
        try (TensorSource src = WeightFiles.open(file); SafetensorsFile out = c.outputs(); PointerScope scope = new PointerScope()) {
            for (String k : src.keys()) {
                try (QuantizedTensor q = src.quantized(k)) {
                    if (q == null) { // a float tensor: what load gives, in fp32
                        actual.put(k, Tensors.keep(src.load(k).to(ScalarType.Float)));
                        continue;
                    }
                    // GGUF cases name outputs by tensor, bitsandbytes cases by Linear (the key without ".weight")
                    String name = k.endsWith(".weight") && out.info(k) == null ? k.substring(0, k.length() - ".weight".length()) : k;
                    actual.put(name, Tensors.keep(q.dequantize(q.valueType())));
                    actual.put(name + ".fp32", Tensors.keep(q.values(0, q.numel()).view(q.shape())));
                }
            }
            return Outputs.compare(c, c.name(), actual, out);
        } catch (RuntimeException e) {
            return List.of(CaseResult.failed(c.name(), "-", e));
        } finally {
            Tensors.closeAll(actual.values());
        }
    }

    private static List<CaseResult> fp8Codes(GoldenCase c) {
        Map<String, Tensor> actual = new HashMap<>();
        try (SafetensorsFile in = c.inputs(); SafetensorsFile out = c.outputs(); PointerScope scope = new PointerScope()) {
            for (Fp8.Format f : Fp8.Format.values()) {
                String n = f.goldenName();
                Tensor codes = Fp8.allCodes();
                Tensor decoded = Fp8.decode(codes, f);
                actual.put(n + "_class", Tensors.keep(Fp8.classify(decoded)));
                actual.put(n + "_decoded_finite", Tensors.keep(decoded.nan_to_num(new org.bytedeco.pytorch.DoubleOptional(0), new org.bytedeco.pytorch.DoubleOptional(0), new org.bytedeco.pytorch.DoubleOptional(0))));
                String inputs = "encode_" + n + "_inputs";
                if (in.info(inputs) != null) actual.put("encode_" + n, Tensors.keep(Fp8.encode(in.load(inputs), f)));
            }
            return Outputs.compare(c, c.name(), actual, out);
        } catch (RuntimeException e) {
            return List.of(CaseResult.failed(c.name(), "-", e));
        } finally {
            Tensors.closeAll(actual.values());
        }
    }
}
