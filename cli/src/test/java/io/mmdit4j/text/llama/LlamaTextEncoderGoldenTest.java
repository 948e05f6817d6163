package io.mmdit4j.text.llama;

import io.mmdit4j.GoldenData;
import io.mmdit4j.golden.CaseResult;
import io.mmdit4j.golden.GoldenRunner;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.io.SafetensorsWriter;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
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
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The Llama text tower against transformers' LlamaModel (golden), the checkpoint layouts it accepts, bf16, and bad input. */
class LlamaTextEncoderGoldenTest {
    static final Path AREA = GoldenData.root().resolve("llama_text_encoder");
    static final Path MODEL = AREA.resolve("models/tiny/text_encoder");
    private static Map<String, Tensor> weights;

    @BeforeAll
    static void readWeights() {
        weights = new LinkedHashMap<>();
        try (SafetensorsFile f = SafetensorsFile.open(MODEL.resolve("model.safetensors"))) {
            for (String k : f.keys()) weights.put(k, Tensors.keep(f.load(k)));
        }
    }

    @AfterAll
    static void releaseWeights() {
        Tensors.closeAll(weights.values());
    }

    static Tensor input(String caseName, String name) {
        try (SafetensorsFile in = SafetensorsFile.open(AREA.resolve("cases").resolve(caseName).resolve("inputs.safetensors"))) {
            return in.load(name);
        }
    }

    static Tensor output(String caseName, String name) {
        try (SafetensorsFile out = SafetensorsFile.open(AREA.resolve("cases").resolve(caseName).resolve("outputs.safetensors"))) {
            return out.load(name);
        }
    }

    /** A copy of the tiny model folder with every key renamed by {@code rename} plus {@code extra} tensors, in {@code dtype}. */
    private static Path variant(Path dir, java.util.function.UnaryOperator<String> rename, Map<String, Tensor> extra, ScalarType dtype) throws IOException {
        Files.createDirectories(dir);
        Files.copy(MODEL.resolve("config.json"), dir.resolve("config.json"));
        try (PointerScope s = new PointerScope()) {
            Map<String, Tensor> out = new LinkedHashMap<>();
            weights.forEach((k, v) -> out.put(rename.apply(k), v.to(dtype)));
            out.putAll(extra);
            SafetensorsWriter.write(dir.resolve("model.safetensors"), out);
        }
        return dir;
    }

    @Test
    void allGoldenCasesPass() {
        List<CaseResult> results = new GoldenRunner().run(List.of(AREA), r -> { });
        List<String> bad = results.stream().filter(r -> r.status() != CaseResult.Status.PASS).map(CaseResult::line).collect(Collectors.toList());
        assertTrue(bad.isEmpty(), String.join("\n", bad));
        assertEquals(3, results.stream().map(CaseResult::caseName).distinct().count());
        assertEquals(9, results.size()); // hidden_states, prompt_embeds, prompt_attention_mask per case
    }

    @Test
    void skippedHiddenStateRunsOnlyTheLayersItNeedsAndEqualsTheFullForward() {
        try (PointerScope s = new PointerScope();
             LlamaModel full = LlamaModel.load(MODEL, DType.F32); LlamaModel partial = LlamaModel.load(MODEL, DType.F32, 1)) {
            Tensor ids = input("b2_mixed_len64", "input_ids"), mask = input("b2_mixed_len64", "attention_mask");
            assertEquals(1, partial.loadedLayers());
            try (LlamaModel.Output o = full.forward(ids, mask)) {
                assertEquals(4, o.hiddenStates().size());
                for (int skip = 0; skip <= 3; skip++) {
                    try (Tensor h = full.hiddenState(ids, mask, skip)) {
                        assertTrue(equal(h, o.fromEnd(skip)), "skip " + skip);
                    }
                }
                try (Tensor h = partial.hiddenState(ids, mask, 2)) {
                    assertTrue(equal(h, o.fromEnd(2)));
                }
            }
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> partial.hiddenState(ids, mask, 1));
            assertTrue(e.getMessage().contains("loaded with 1 of 3 layers"), e.getMessage());
            assertThrows(IllegalStateException.class, () -> partial.forward(ids, mask));
        }
    }

    @Test
    void repeatedCallsKeepRssFlat() {
        try (PointerScope s = new PointerScope(); LlamaModel m = LlamaModel.load(MODEL, DType.F32)) {
            Tensor ids = input("b1_len256_rightpad", "input_ids"), mask = input("b1_len256_rightpad", "attention_mask");
            Runnable call = () -> {
                m.forward(ids, mask).close();
                HunyuanPromptEncoder.llamaEmbeddings(m, ids, mask, 2, 95).close();
            };
            for (int i = 0; i < 3; i++) call.run(); // warm-up: allocator pools, JIT
            long before = io.mmdit4j.runtime.ProcessMemory.rssMb();
            for (int i = 0; i < 15; i++) call.run();
            long growthMb = io.mmdit4j.runtime.ProcessMemory.rssMb() - before;
            // One call makes ~10 MB of attention scores and several hundred temporaries: a leak would add up to 150 MB or more.
            assertTrue(growthMb < 40, "RSS grew by " + growthMb + " MB over 15 calls");
        }
    }

    @Test
    void acceptsCausalLmAndLlavaKeyLayouts(@TempDir Path tmp) throws IOException {
        try (PointerScope s = new PointerScope()) {
            Tensor ids = input("b1_truncated_len16", "input_ids"), mask = input("b1_truncated_len16", "attention_mask");
            Tensor expected = output("b1_truncated_len16", "hidden_states").select(0, 2); // output of layer 2 = hidden_states[-2]
            Tensor head = Tensors.fromFloats(new float[1024 * 32], 1024, 32);
            Path causalLm = variant(tmp.resolve("causal"), k -> "model." + k, Map.of("lm_head.weight", head), ScalarType.Float);
            Path llava = variant(tmp.resolve("llava"), k -> "language_model.model." + k,
                    Map.of("language_model.lm_head.weight", head, "multi_modal_projector.linear_1.weight", Tensors.fromFloats(new float[4], 2, 2),
                            "vision_tower.vision_model.embeddings.class_embedding", Tensors.fromFloats(new float[2], 2)), ScalarType.Float);
            Path buffers = variant(tmp.resolve("buffers"), k -> k, Map.of("layers.0.self_attn.rotary_emb.inv_freq", Tensors.fromFloats(new float[4], 4)),
                    ScalarType.Float);
            for (Path p : List.of(causalLm, llava, buffers)) {
                try (LlamaModel m = LlamaModel.load(p, DType.F32, 2); Tensor h = m.hiddenState(ids, mask, 1)) {
                    float[] a = Tensors.toFloats(h), b = Tensors.toFloats(expected);
                    for (int i = 0; i < a.length; i++) assertEquals(b[i], a[i], 1e-4 + 1e-4 * Math.abs(b[i]), p + " at " + i);
                }
            }
            // An unknown tensor inside the text stack is an error, not silently dropped.
            Path stray = variant(tmp.resolve("stray"), k -> k, Map.of("layers.0.mlp.extra.weight", Tensors.fromFloats(new float[4], 2, 2)), ScalarType.Float);
            ModelFormatException e = assertThrows(ModelFormatException.class, () -> LlamaModel.load(stray, DType.F32).close());
            assertTrue(e.getMessage().contains("layers.0.mlp.extra.weight"), e.getMessage());
        }
    }

    @Test
    void bf16CheckpointLoadsAsViewsAndIsCloseToTheReference(@TempDir Path tmp) throws IOException {
        Path bf16 = variant(tmp.resolve("bf16"), k -> k, Map.of(), ScalarType.BFloat16);
        long fileSize = Files.size(bf16.resolve("model.safetensors"));
        try (PointerScope s = new PointerScope(); LlamaModel m = LlamaModel.load(bf16, DType.BF16);
             LlamaModel fromFp32 = LlamaModel.load(MODEL, DType.BF16)) {
            assertEquals(fileSize, m.layers.get(0).down_proj.weight().storage().nbytes(), "bf16 weights view the mapped file");
            assertEquals(DType.BF16, Tensors.dtype(fromFp32.embed_tokens));
            String c = "b2_mixed_len64";
            Tensor ids = input(c, "input_ids"), mask = input(c, "attention_mask");
            try (HunyuanPromptEncoder.LlamaEmbeddings e = HunyuanPromptEncoder.llamaEmbeddings(m, ids, mask, 2, 95)) {
                assertEquals(DType.BF16, Tensors.dtype(e.promptEmbeds()));
                assertTrue(equal(e.attentionMask(), output(c, "prompt_attention_mask")));
                float[] a = Tensors.toFloats(e.promptEmbeds()), b = Tensors.toFloats(output(c, "prompt_embeds"));
                double maxDiff = 0, maxAbs = 0;
                for (int i = 0; i < a.length; i++) {
                    maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
                    maxAbs = Math.max(maxAbs, Math.abs(b[i]));
                }
                assertTrue(maxDiff < 0.03 * maxAbs, "bf16 vs fp32 reference: max diff " + maxDiff + " of max " + maxAbs);
            }
        }
    }

    @Test
    void badInputIsRejectedBeforeAnyNativeWork() {
        try (PointerScope s = new PointerScope(); LlamaModel m = LlamaModel.load(MODEL, DType.F32)) {
            Tensor ids = input("b1_truncated_len16", "input_ids"), mask = input("b1_truncated_len16", "attention_mask");
            Tensor tooBig = ids.clone();
            tooBig.select(1, 3).fill_(new org.bytedeco.pytorch.Scalar(1024));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> m.hiddenState(tooBig, mask, 2));
            assertTrue(e.getMessage().contains("1024") && e.getMessage().contains("vocabulary"), e.getMessage());

            Tensor shortMask = mask.narrow(1, 0, 50);
            e = assertThrows(IllegalArgumentException.class, () -> m.hiddenState(ids, shortMask, 2));
            assertTrue(e.getMessage().contains("[1, 50]") && e.getMessage().contains("[1, 111]"), e.getMessage());

            e = assertThrows(IllegalArgumentException.class, () -> m.forward(ids, mask.to(ScalarType.Float)));
            assertTrue(e.getMessage().contains("integer or bool"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> m.forward(ids, mask.mul(new org.bytedeco.pytorch.Scalar(2))));
            assertTrue(e.getMessage().contains("only 0 and 1"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> m.hiddenState(ids, mask, 4));
            assertTrue(e.getMessage().contains("0..3"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> m.forward(ids.to(ScalarType.Float), mask));
            assertTrue(e.getMessage().contains("integers"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> HunyuanPromptEncoder.llamaEmbeddings(m, ids, mask, 2, 111));
            assertTrue(e.getMessage().contains("crop_start 111"), e.getMessage());
        }
    }

    @Test
    void configErrorsNameTheProblem(@TempDir Path tmp) throws IOException {
        String config = Files.readString(MODEL.resolve("config.json"));
        Path yarn = Files.createDirectories(tmp.resolve("yarn"));
        Files.writeString(yarn.resolve("config.json"), config.replace("\"rope_scaling\": null", "\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0}"));
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> LlamaConfig.read(yarn.resolve("config.json")));
        assertTrue(e.getMessage().contains("'yarn' is not supported"), e.getMessage());

        Path layers = Files.createDirectories(tmp.resolve("layers"));
        Files.writeString(layers.resolve("config.json"), config.replace("\"num_hidden_layers\": 3", "\"num_hidden_layers\": 4"));
        Files.copy(MODEL.resolve("model.safetensors"), layers.resolve("model.safetensors"));
        e = assertThrows(ModelFormatException.class, () -> LlamaModel.load(layers, DType.F32).close());
        assertTrue(e.getMessage().contains("3 decoder layers") && e.getMessage().contains("num_hidden_layers 4"), e.getMessage());

        Path gqa = Files.createDirectories(tmp.resolve("gqa"));
        Files.writeString(gqa.resolve("config.json"), config.replace("\"num_key_value_heads\": 2", "\"num_key_value_heads\": 3"));
        e = assertThrows(ModelFormatException.class, () -> LlamaConfig.read(gqa.resolve("config.json")));
        assertTrue(e.getMessage().contains("not a multiple of num_key_value_heads 3"), e.getMessage());

        e = assertThrows(ModelFormatException.class, () -> LlamaModel.load(tmp.resolve("missing"), DType.F32));
        assertTrue(e.getMessage().contains("no config.json"), e.getMessage());
    }
}
