package io.mmdit4j.text.t5;

import io.mmdit4j.GoldenData;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.io.SafetensorsWriter;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** T5 encoder in bf16: zero-copy weights and agreement with fp32 (the exact fp32 checks are golden cases). */
class T5EncoderBf16Test {
    private static final Path MODELS = GoldenData.root().resolve("text_encoders/models");

    @Test
    void bf16CheckpointsComputedInBf16AreViewsAndCloseToFp32(@TempDir Path tmp) throws IOException {
        Path src = MODELS.resolve("t5/text_encoder_2");
        Path bf16 = tmp.resolve("t5bf16");
        Files.createDirectories(bf16);
        Files.copy(src.resolve("config.json"), bf16.resolve("config.json"));
        Map<String, Tensor> all = new LinkedHashMap<>();
        try (SafetensorsFile f = SafetensorsFile.open(src.resolve("model.safetensors"))) {
            for (String k : f.keys()) all.put(k, Tensors.keep(f.load(k)));
        }
        try (PointerScope s = new PointerScope()) {
            Map<String, Tensor> converted = new LinkedHashMap<>();
            all.forEach((k, v) -> converted.put(k, v.to(ScalarType.BFloat16)));
            SafetensorsWriter.write(bf16.resolve("model.safetensors"), converted);
            long fileSize = Files.size(bf16.resolve("model.safetensors"));
            Tensor ids;
            try (SafetensorsFile in = SafetensorsFile.open(GoldenData.root().resolve("text_encoders/cases/t5_len256/inputs.safetensors"))) {
                ids = in.load("input_ids");
            }
            try (T5Encoder half = T5Encoder.load(bf16, DType.BF16); T5Encoder full = T5Encoder.load(src, DType.F32);
                 T5Encoder.Output h = half.forward(ids, null, false); T5Encoder.Output f = full.forward(ids, null, false)) {
                assertEquals(fileSize, half.block.get(0).wo.weight().storage().nbytes(), "bf16 weights view the mapped file");
                float[] a = Tensors.toFloats(h.lastHiddenState()), b = Tensors.toFloats(f.lastHiddenState());
                double maxDiff = 0, maxAbs = 0;
                for (int i = 0; i < a.length; i++) {
                    maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
                    maxAbs = Math.max(maxAbs, Math.abs(b[i]));
                }
                assertTrue(maxDiff < 0.05 * maxAbs, "bf16 vs fp32: max diff " + maxDiff + " of max " + maxAbs);
            }
        } finally {
            Tensors.closeAll(all.values());
        }
    }
}
