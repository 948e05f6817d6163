package io.mmdit4j.text.encoders;

import io.mmdit4j.GoldenData;
import io.mmdit4j.golden.CaseResult;
import io.mmdit4j.golden.GoldenRunner;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.io.SafetensorsWriter;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.text.clip.ClipTextModel;
import io.mmdit4j.text.t5.T5Encoder;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

import static org.bytedeco.pytorch.global.torch.equal;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** CLIP and T5 encoders against transformers' outputs, and the checkpoint variants they must accept. */
class TextEncoderGoldenTest {
    private static final Path MODELS = GoldenData.root().resolve("text_encoders/models");

    @Test
    void allTextEncoderCasesPass() {
        List<CaseResult> results = new GoldenRunner().run(List.of(GoldenData.root().resolve("text_encoders")), r -> { });
        List<String> bad = results.stream().filter(r -> r.status() != CaseResult.Status.PASS).map(CaseResult::line).collect(Collectors.toList());
        assertTrue(bad.isEmpty(), String.join("\n", bad));
        assertEquals(6, results.stream().map(CaseResult::caseName).distinct().count());
    }

    private static Map<String, Tensor> readAll(Path file) {
        Map<String, Tensor> m = new LinkedHashMap<>();
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            for (String k : f.keys()) m.put(k, Tensors.keep(f.load(k)));
        }
        return m;
    }

    private static Path copyConfig(Path from, Path to) throws IOException {
        Files.createDirectories(to);
        Files.copy(from.resolve("config.json"), to.resolve("config.json"));
        return to;
    }

    @Test
    void t5AcceptsEitherTiedEmbeddingNameAndShardedFolders(@TempDir Path tmp) throws IOException {
        Path src = MODELS.resolve("t5/text_encoder_2");
        Map<String, Tensor> all = readAll(src.resolve("model.safetensors"));
        try (PointerScope s = new PointerScope()) {
            // encoder.embed_tokens.weight instead of shared.weight, split over two shards with an index
            Path sharded = copyConfig(src, tmp.resolve("sharded"));
            Map<String, Tensor> a = new LinkedHashMap<>(), b = new LinkedHashMap<>();
            StringBuilder index = new StringBuilder("{\"metadata\":{},\"weight_map\":{");
            int i = 0;
            for (Map.Entry<String, Tensor> e : all.entrySet()) {
                String key = e.getKey().equals("shared.weight") ? "encoder.embed_tokens.weight" : e.getKey();
                String shard = i++ % 2 == 0 ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
                (shard.contains("00001-") ? a : b).put(key, e.getValue());
                index.append(i > 1 ? "," : "").append('"').append(key).append("\":\"").append(shard).append('"');
            }
            SafetensorsWriter.write(sharded.resolve("model-00001-of-00002.safetensors"), a);
            SafetensorsWriter.write(sharded.resolve("model-00002-of-00002.safetensors"), b);
            Files.writeString(sharded.resolve("model.safetensors.index.json"), index.append("}}").toString());

            Tensor ids = idsOf("t5_len256");
            try (T5Encoder original = T5Encoder.load(src, DType.F32); T5Encoder renamed = T5Encoder.load(sharded, DType.F32);
                 T5Encoder.Output x = original.forward(ids, null, false); T5Encoder.Output y = renamed.forward(ids, null, false)) {
                assertTrue(equal(x.lastHiddenState(), y.lastHiddenState()));
            }
        } finally {
            Tensors.closeAll(all.values());
        }
    }

    @Test
    void clipLoadsWithAndWithoutProjectionAndPoolsAtTheFirstEos(@TempDir Path tmp) throws IOException {
        Path src = MODELS.resolve("clip_l/text_encoder");
        Map<String, Tensor> all = readAll(src.resolve("model.safetensors"));
        try (PointerScope s = new PointerScope()) {
            Path noProj = copyConfig(src, tmp.resolve("noproj"));
            Map<String, Tensor> kept = new LinkedHashMap<>(all);
            kept.remove("text_projection.weight");
            SafetensorsWriter.write(noProj.resolve("model.safetensors"), kept);
            Tensor ids = idsOf("clip_l_plain");
            try (ClipTextModel with = ClipTextModel.load(src, DType.F32); ClipTextModel without = ClipTextModel.load(noProj, DType.F32);
                 ClipTextModel.Output a = with.forward(ids, false); ClipTextModel.Output b = without.forward(ids, false)) {
                assertNotNull(a.textEmbeds());
                assertNull(b.textEmbeds());
                assertTrue(equal(a.pooled(), b.pooled()));
                assertTrue(a.hiddenStates().isEmpty());
                assertThrows(IllegalStateException.class, a::penultimate);
                // pooled row 0 is the last hidden state at its first <|endoftext|> (id 49407)
                long[] row = new long[77];
                ids.select(0, 0).contiguous().data_ptr_long().get(row);
                int eos = 0;
                while (row[eos] != 49407) eos++;
                assertTrue(equal(a.pooled().select(0, 0), a.lastHiddenState().select(0, 0).select(0, eos)));
            }
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> {
                try (ClipTextModel m = ClipTextModel.load(src, DType.F32)) {
                    m.forward(Tensors.fromFloats(new float[78], 1, 78).to(org.bytedeco.pytorch.global.torch.ScalarType.Long), false);
                }
            });
            assertTrue(e.getMessage().contains("[1, 78]"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> {
                try (ClipTextModel m = ClipTextModel.load(src, DType.F32)) {
                    m.forward(Tensors.fromFloats(new float[] {49406, 50000}, 1, 2).to(org.bytedeco.pytorch.global.torch.ScalarType.Long), false);
                }
            });
            assertTrue(e.getMessage().contains("[49406, 50000]") && e.getMessage().contains("49408"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> {
                try (T5Encoder m = T5Encoder.load(MODELS.resolve("t5/text_encoder_2"), DType.F32)) {
                    m.forward(Tensors.fromFloats(new float[] {-1, 5}, 1, 2).to(org.bytedeco.pytorch.global.torch.ScalarType.Long), null, false);
                }
            });
            assertTrue(e.getMessage().contains("[-1, 5]"), e.getMessage());
        } finally {
            Tensors.closeAll(all.values());
        }
    }

    private static Tensor idsOf(String caseName) {
        try (SafetensorsFile in = SafetensorsFile.open(GoldenData.root().resolve("text_encoders/cases").resolve(caseName).resolve("inputs.safetensors"))) {
            return in.load("input_ids");
        }
    }
}
