package io.mmdit4j.io.gguf;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.io.WeightFiles;
import io.mmdit4j.nn.Linear;
import io.mmdit4j.runtime.DType;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.bytedeco.pytorch.global.torch.randn;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The F16 matrices a GGUF keeps unquantized: with bf16 compute (same width) a Linear converts them once at load; with
 * fp32 compute (twice the width) it keeps them in F16 and converts per forward, so the model's memory stays the file's.
 * Either way the product is the one of the weight converted to the compute dtype.
 */
class GgufPlainMatrixLinearTest {
    @TempDir
    Path tmp;

    @Test
    void f16MatricesAreConvertedOnceWhenTheComputeDtypeIsAsWide() {
        Path file = tmp.resolve("plain.gguf");
        try (PointerScope scope = new PointerScope()) {
            Tensor w16 = randn(24, 40).to(ScalarType.Half).contiguous();
            Map<String, GgufWriter.Kv> kv = new LinkedHashMap<>();
            kv.put("general.architecture", GgufWriter.Kv.string("flux"));
            GgufWriter.write(file, kv, List.of(new GgufWriter.Spec("lin.weight", GgufType.F16, new long[] {24, 40})),
                    s -> w16.view(ScalarType.Byte).view(-1));
            Tensor x = randn(3, 40);
            for (DType dtype : List.of(DType.BF16, DType.F32)) {
                try (GgufFile f = (GgufFile) WeightFiles.open(file); PointerScope inner = new PointerScope()) {
                    Linear l = Linear.loadNoBias(StateDict.of(f), "lin", 40, 24, dtype);
                    if (dtype == DType.BF16) assertNull(l.quantized(), "converted once: a plain bf16 weight");
                    else assertNotNull(l.quantized(), "fp32 compute keeps the F16 matrix and converts it per forward");
                    Tensor xs = x.to(dtype.scalarType());
                    Tensor expected = xs.matmul(w16.to(dtype.scalarType()).t());
                    assertTrue(l.forward(xs).equal(expected), dtype + ": the product of the converted weight");
                }
            }
        }
    }
}
