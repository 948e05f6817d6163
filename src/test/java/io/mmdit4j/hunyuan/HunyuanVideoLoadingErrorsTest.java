package io.mmdit4j.hunyuan;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.mmdit4j.GoldenData;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.io.SafetensorsWriter;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.runtime.Torch;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Loading and input errors of the HunyuanVideo transformer, each with a message naming file/key/argument and expected vs found. */
class HunyuanVideoLoadingErrorsTest {
    private static final int[] AXES = {4, 6, 6};
    private static Path tiny;

    @TempDir
    Path tmp;

    @BeforeAll
    static void init() {
        tiny = GoldenData.root().resolve("hunyuan_video_transformer/models/tiny/transformer");
        Torch.init();
    }

    private static Map<String, Tensor> readAll(Path file) {
        Map<String, Tensor> m = new LinkedHashMap<>();
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            for (String k : f.keys()) m.put(k, f.load(k));
        }
        return m;
    }

    /** A copy of the tiny diffusers folder whose weights and config.json went through the edits; returns the folder. */
    private Path tinyCopy(Consumer<Map<String, Tensor>> edit, Consumer<ObjectNode> config) throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("transformer"));
        ObjectMapper json = new ObjectMapper();
        ObjectNode cfg = (ObjectNode) json.readTree(tiny.resolve("config.json").toFile());
        config.accept(cfg);
        Files.writeString(dir.resolve("config.json"), json.writeValueAsString(cfg));
        try (PointerScope s = new PointerScope()) {
            Map<String, Tensor> all = readAll(tiny.resolve("diffusion_pytorch_model.safetensors"));
            edit.accept(all);
            SafetensorsWriter.write(dir.resolve("diffusion_pytorch_model.safetensors"), all);
        }
        return dir;
    }

    /** The tiny weights under original names, after {@code edit}, as a single file. */
    private Path originalCopy(Consumer<Map<String, Tensor>> edit) {
        Path file = tmp.resolve("hunyuan-original.safetensors");
        try (PointerScope s = new PointerScope()) {
            Map<String, Tensor> all = HunyuanVideoKeyMap.toOriginal(readAll(tiny.resolve("diffusion_pytorch_model.safetensors")));
            edit.accept(all);
            SafetensorsWriter.write(file, all);
        }
        return file;
    }

    private static ModelFormatException loadFails(Path path, String... fragments) {
        return expect(ModelFormatException.class, () -> {
            try (PointerScope s = new PointerScope();
                 HunyuanVideoTransformer m = HunyuanVideoTransformer.load(path, DType.F32, DeviceSpec.CPU, AXES)) {
                throw new AssertionError("loaded " + path + " as " + m.config());
            }
        }, fragments);
    }

    private static <T extends Throwable> T expect(Class<T> type, Executable e, String... fragments) {
        T ex = assertThrows(type, e);
        String m = ex.getMessage();
        assertTrue(m != null, "exception without message: " + ex);
        for (String f : fragments) assertTrue(m.contains(f), () -> "message should contain '" + f + "': " + m);
        return ex;
    }

    // ---------------------------------------------------------------- weights that do not match the model

    @Test
    void unmodifiedCopiesLoad() throws IOException {
        Path dir = tinyCopy(m -> { }, c -> { });
        try (HunyuanVideoTransformer model = HunyuanVideoTransformer.load(dir, DType.F32)) {
            assertEquals(2, model.numGuidedBlocks() / 2);
            assertEquals(4, model.numGuidedBlocks());
        }
        try (HunyuanVideoTransformer model = HunyuanVideoTransformer.load(originalCopy(m -> { }), DType.F32, DeviceSpec.CPU, AXES)) {
            assertEquals(1, model.config().numRefinerLayers());
        }
        Path comfy = originalCopy(m -> {
            Map<String, Tensor> prefixed = new LinkedHashMap<>();
            m.forEach((k, v) -> prefixed.put(HunyuanVideoKeyMap.COMFY_PREFIX + k, v));
            m.clear();
            m.putAll(prefixed);
        });
        try (HunyuanVideoTransformer model = HunyuanVideoTransformer.load(comfy, DType.F32, DeviceSpec.CPU, AXES)) {
            assertEquals(2, model.config().numSingleLayers(), "ComfyUI's model.diffusion_model. prefix is accepted");
        }
    }

    @Test
    void missingTensorIsNamedWithItsExpectedShape() throws IOException {
        Path dir = tinyCopy(m -> m.remove("transformer_blocks.1.attn.norm_added_k.weight"), c -> { });
        loadFails(dir, "missing tensor 'transformer_blocks.1.attn.norm_added_k.weight'", "[16]", "diffusion_pytorch_model.safetensors");
    }

    @Test
    void misShapedTensorReportsExpectedAndFound() throws IOException {
        Path dir = tinyCopy(m -> m.put("context_embedder.token_refiner.refiner_blocks.0.norm_out.linear.weight",
                Tensors.keep(m.get("context_embedder.token_refiner.refiner_blocks.0.norm_out.linear.weight").narrow(0, 0, 32).clone())), c -> { });
        loadFails(dir, "context_embedder.token_refiner.refiner_blocks.0.norm_out.linear.weight", "[32, 32]", "expected [64, 32]");
    }

    @Test
    void unexpectedTensorIsReported() throws IOException {
        Path dir = tinyCopy(m -> m.put("transformer_blocks.0.attn.extra.weight", Tensors.keep(m.get("proj_out.bias").clone())), c -> { });
        loadFails(dir, "unexpected tensor", "'transformer_blocks.0.attn.extra.weight'");
    }

    @Test
    void configThatDisagreesWithTheWeightsFails() throws IOException {
        Path dir = tinyCopy(m -> { }, c -> c.put("num_layers", 3));
        loadFails(dir, "missing tensor 'transformer_blocks.2.");
        dir = tinyCopy(m -> { }, c -> c.put("_class_name", "FluxTransformer2DModel"));
        loadFails(dir, "_class_name is 'FluxTransformer2DModel', expected HunyuanVideoTransformer3DModel");
        dir = tinyCopy(m -> { }, c -> c.put("image_condition_type", "token_replace"));
        loadFails(dir, "image_condition_type", "not supported");
    }

    @Test
    void aFluxCheckpointIsNotAHunyuanVideoTransformer() {
        Path flux = GoldenData.root().resolve("flux_transformer/models/schnell/transformer/diffusion_pytorch_model.safetensors");
        loadFails(flux, "not a HunyuanVideo transformer checkpoint", "missing tensor 'x_embedder.proj.weight'");
    }

    @Test
    void originalCheckpointErrorsNameTheOriginalKey() {
        Path file = originalCopy(m -> m.put("double_blocks.0.img_attn_qkv.weight",
                Tensors.keep(m.get("double_blocks.0.img_attn_qkv.weight").narrow(0, 0, 95).clone())));
        loadFails(file, "double_blocks.0.img_attn_qkv.weight", "95 rows, expected a multiple of 3");
        file = originalCopy(m -> m.remove("img_in.proj.weight"));
        loadFails(file, "missing tensor 'img_in.proj.weight'");
        Path noAxes = originalCopy(m -> { });
        expect(ModelFormatException.class, () -> HunyuanVideoTransformer.load(noAxes, DType.F32).close(),
                "cannot infer rope_axes_dim for head dim 16");
    }

    // ---------------------------------------------------------------- inputs that do not match the model

    @Test
    void badForwardInputsAreRejectedBeforeAnyNativeCall() {
        Path cases = GoldenData.root().resolve("hunyuan_video_transformer/cases/tiny_plain/inputs.safetensors");
        try (HunyuanVideoTransformer m = HunyuanVideoTransformer.load(tiny, DType.F32);
             SafetensorsFile in = SafetensorsFile.open(cases); PointerScope s = new PointerScope()) {
            Tensor x = in.load("hidden_states"), t = in.load("timestep"), txt = in.load("encoder_hidden_states");
            Tensor mask = in.load("encoder_attention_mask"), pooled = in.load("pooled_projections"), g = in.load("guidance");
            expect(IllegalArgumentException.class, () -> m.forward(x.narrow(3, 0, 7), t, txt, mask, pooled, g),
                    "hidden states have shape [1, 16, 3, 7, 12]", "multiples of 2");
            expect(IllegalArgumentException.class, () -> m.forward(x.narrow(1, 0, 8), t, txt, mask, pooled, g),
                    "hidden states have shape [1, 8, 3, 8, 12]", "expected [B, 16, F, H, W]");
            expect(IllegalArgumentException.class, () -> m.forward(x, t, txt, mask.narrow(1, 0, 9), pooled, g),
                    "encoder attention mask has shape [1, 9], expected [1, 10]");
            expect(IllegalArgumentException.class, () -> m.forward(x, t, txt.narrow(2, 0, 16), mask, pooled, g),
                    "encoder hidden states have shape [1, 10, 16], expected [1, S, 32]");
            expect(IllegalArgumentException.class, () -> m.forward(x, t, txt, mask, pooled, null), "guidance [1] is required");
            expect(IllegalArgumentException.class, () -> m.forward(x, t, txt, mask.mul(new org.bytedeco.pytorch.Scalar(0.0)), pooled, g),
                    "encoder attention mask has a row without real tokens");
            expect(IllegalArgumentException.class, () -> m.forward(x, t, txt, mask, pooled.narrow(1, 0, 20), g),
                    "pooled projections has shape [1, 20], expected [1, 24]");
            expect(IllegalArgumentException.class, () -> m.guidanceDelta(pooled, pooled.narrow(1, 0, 20)),
                    "guidance prompt embedding has shape [1, 20], expected [rows, 24]");
            try (ModulationGuidance bad = ModulationGuidance.builder()
                    .term(Tensors.keep(pooled.clone()), 3.0, io.mmdit4j.guidance.LayerSchedule.from(0)).build()) {
                expect(IllegalArgumentException.class, () -> m.forward(x, t, txt, mask, pooled, g, bad, 0), "delta has shape [1, 24]");
            }
            try (io.mmdit4j.nn.Rope wrong = m.rope(3, 4, 5)) {
                expect(IllegalArgumentException.class, () -> m.forward(x, t, txt, mask, pooled, g, ModulationGuidance.none(), 0, wrong, null),
                        "RoPE table has 60 positions, the latents give 72 tokens");
            }
        }
        expect(IllegalArgumentException.class, () -> HunyuanVideoTransformer.load(tiny, DType.I64).close(), "compute dtype");
    }
}
