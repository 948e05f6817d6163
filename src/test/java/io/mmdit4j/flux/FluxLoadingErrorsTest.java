package io.mmdit4j.flux;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.io.SafetensorsWriter;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.runtime.Torch;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
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

import static org.bytedeco.pytorch.global.torch.allclose;
import static org.bytedeco.pytorch.global.torch.equal;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** Model-level loading and input errors of the FLUX transformer, each with a message naming file/key and expected vs found. */
class FluxLoadingErrorsTest {
    private static final Path GOLDEN = Path.of(System.getProperty("mmdit.golden", "../shared/golden"));
    private static final Path MODELS = GOLDEN.resolve("flux_transformer/models");
    private static final Path SCHNELL = MODELS.resolve("schnell");
    private static final Path SCHNELL_DIFFUSERS = SCHNELL.resolve("transformer");
    private static final Path SCHNELL_BFL = SCHNELL.resolve("flux1-tiny-schnell.safetensors");
    private static final Path DEV = MODELS.resolve("dev");
    private static final Path CASES = GOLDEN.resolve("flux_transformer/cases");
    private static final int[] AXES = {4, 6, 6};

    @TempDir
    Path tmp;

    @BeforeAll
    static void init() {
        assumeTrue(Files.isDirectory(SCHNELL_DIFFUSERS), "golden data not found at " + GOLDEN.toAbsolutePath());
        Torch.init();
    }

    // ---------------------------------------------------------------- helpers

    /** All tensors of a file (views of its mapping; they outlive the reader). Call inside a PointerScope. */
    private static Map<String, Tensor> readAll(Path file) {
        Map<String, Tensor> m = new LinkedHashMap<>();
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            for (String k : f.keys()) m.put(k, f.load(k));
        }
        return m;
    }

    /**
     * A copy of the schnell diffusers folder in the temp dir whose weights went through {@code edit}
     * and whose config.json went through {@code config}. Returns the weights file.
     */
    private Path schnellCopy(Consumer<Map<String, Tensor>> edit, Consumer<ObjectNode> config) throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("transformer"));
        ObjectMapper json = new ObjectMapper();
        ObjectNode cfg = (ObjectNode) json.readTree(SCHNELL_DIFFUSERS.resolve("config.json").toFile());
        config.accept(cfg);
        Files.writeString(dir.resolve("config.json"), json.writerWithDefaultPrettyPrinter().writeValueAsString(cfg));
        Path weights = dir.resolve("diffusion_pytorch_model.safetensors");
        try (PointerScope s = new PointerScope()) {
            Map<String, Tensor> all = readAll(SCHNELL_DIFFUSERS.resolve("diffusion_pytorch_model.safetensors"));
            edit.accept(all);
            SafetensorsWriter.write(weights, all, Map.of("format", "pt"));
        }
        return weights;
    }

    private Path schnellCopy(Consumer<Map<String, Tensor>> edit) throws IOException {
        return schnellCopy(edit, c -> { });
    }

    private static ModelFormatException loadFails(Path path, String... fragments) {
        return expect(ModelFormatException.class, () -> {
            try (PointerScope s = new PointerScope(); FluxTransformer m = FluxTransformer.load(path, DType.F32, AXES)) {
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

    private static FluxInputs inputs(SafetensorsFile in, boolean withGuidance) {
        return new FluxInputs(in.load("hidden_states"), in.load("encoder_hidden_states"), in.load("pooled_projections"),
                in.load("timestep"), withGuidance ? in.load("guidance") : null, in.load("img_ids"), in.load("txt_ids"));
    }

    // ---------------------------------------------------------------- weights that do not match the model

    @Test
    void copyOfTheGoldenFolderLoads() throws IOException {
        // The baseline for the tests below: the unmodified round trip through the writer is accepted.
        Path weights = schnellCopy(m -> { });
        try (PointerScope s = new PointerScope(); FluxTransformer model = FluxTransformer.load(weights.getParent(), DType.F32)) {
            assertEquals(2, model.config().numLayers());
            assertEquals(3, model.config().numSingleLayers());
            assertFalse(model.config().guidanceEmbeds());
        }
    }

    @Test
    void missingTensor() throws IOException {
        Path weights = schnellCopy(m -> assertTrue(m.remove("proj_out.weight") != null));
        loadFails(weights.getParent(), weights.toString(), "missing tensor 'proj_out.weight'", "expected shape [64, 32]");
    }

    @Test
    void unexpectedTensor() throws IOException {
        Path weights = schnellCopy(m -> m.put("foo.weight", Tensors.fromFloats(new float[] {1, 2, 3}, 3)));
        loadFails(weights.getParent(), weights.toString(), "unexpected", "'foo.weight'", "1 unexpected");
    }

    @Test
    void wrongShape() throws IOException {
        Path weights = schnellCopy(m -> m.put("x_embedder.weight", m.get("x_embedder.weight").narrow(1, 0, 63)));
        loadFails(weights.getParent(), weights.toString(), "'x_embedder.weight'", "[32, 63]", "expected [32, 64]");
    }

    @Test
    void integerWeightsAreRejected() throws IOException {
        Path weights = schnellCopy(m -> m.put("proj_out.bias", m.get("proj_out.bias").to(ScalarType.Long)));
        loadFails(weights.getParent(), weights.toString(), "'proj_out.bias'", "I64", "floating-point");
    }

    @Test
    void configWithMoreLayersThanTheWeights() throws IOException {
        Path weights = schnellCopy(m -> { }, c -> c.put("num_layers", 3));
        loadFails(weights.getParent(), weights.toString(), "missing tensor 'transformer_blocks.2.", "expected shape");
    }

    @Test
    void configWithFewerLayersThanTheWeights() throws IOException {
        Path weights = schnellCopy(m -> { }, c -> c.put("num_single_layers", 2));
        loadFails(weights.getParent(), weights.toString(), "unexpected", "'single_transformer_blocks.2.");
    }

    @Test
    void configOfAnotherModelClass() throws IOException {
        Path weights = schnellCopy(m -> { }, c -> c.put("_class_name", "SD3Transformer2DModel"));
        loadFails(weights.getParent(), weights.getParent().resolve("config.json").toString(), "'SD3Transformer2DModel'",
                "expected FluxTransformer2DModel");
    }

    @Test
    void nonFluxSingleFile() throws IOException {
        Path f = tmp.resolve("not-flux.safetensors");
        try (PointerScope s = new PointerScope()) {
            SafetensorsWriter.write(f, Map.of(
                    "pos_embed.proj.weight", Tensors.fromFloats(new float[16], 4, 4),
                    "transformer_blocks.0.norm1.linear.weight", Tensors.fromFloats(new float[8], 2, 4)));
        }
        loadFails(f, f.toString(), "not a FLUX transformer checkpoint", "x_embedder.weight");
    }

    @Test
    void goldenVaeAndSd3FilesAreNotFlux() {
        Path vae = GOLDEN.resolve("vae/models/vae/diffusion_pytorch_model.safetensors");
        Path sd3 = GOLDEN.resolve("sd3_transformer/models/sd3m/transformer/diffusion_pytorch_model.safetensors");
        int seen = 0;
        for (Path p : new Path[] {vae, sd3}) {
            if (!Files.isRegularFile(p)) continue;
            loadFails(p, p.toString(), "not a FLUX transformer checkpoint");
            seen++;
        }
        assumeTrue(seen > 0, "no golden VAE / SD3 checkpoint found");
    }

    @Test
    void bflLookingFileWithoutImageInput() throws IOException {
        Path f = tmp.resolve("half-bfl.safetensors");
        try (PointerScope s = new PointerScope()) {
            SafetensorsWriter.write(f, Map.of("double_blocks.0.img_attn.qkv.weight", Tensors.fromFloats(new float[12], 6, 2)));
        }
        loadFails(f, f.toString(), "not a FLUX transformer checkpoint", "img_in.weight");
    }

    // ---------------------------------------------------------------- BFL names with the ComfyUI prefix

    @Test
    void comfyPrefixedBflFileMatchesPlainBflAndDiffusers() throws IOException {
        Path prefixed = tmp.resolve("flux1-tiny-schnell-comfy.safetensors");
        try (PointerScope s = new PointerScope()) {
            Map<String, Tensor> plain = readAll(SCHNELL_BFL);
            Map<String, Tensor> out = new LinkedHashMap<>();
            plain.forEach((k, v) -> out.put(FluxKeyMap.COMFY_PREFIX + k, v));
            SafetensorsWriter.write(prefixed, out);
        }
        try (SafetensorsFile check = SafetensorsFile.open(prefixed)) {
            assertTrue(check.keys().stream().allMatch(k -> k.startsWith("model.diffusion_model.")));
            assertTrue(check.keys().contains("model.diffusion_model.img_in.weight"));
        }
        // No bfl_params.json beside the prefixed copy: the axes come from the caller.
        try (PointerScope s = new PointerScope();
             FluxTransformer diffusers = FluxTransformer.load(SCHNELL_DIFFUSERS, DType.F32);
             FluxTransformer bfl = FluxTransformer.load(SCHNELL_BFL, DType.F32);
             FluxTransformer comfy = FluxTransformer.load(prefixed, DType.F32, AXES);
             SafetensorsFile in = SafetensorsFile.open(CASES.resolve("schnell_plain/inputs.safetensors"));
             SafetensorsFile ref = SafetensorsFile.open(CASES.resolve("schnell_plain/outputs.safetensors"))) {
            assertEquals(diffusers.config(), bfl.config());
            assertEquals(diffusers.config(), comfy.config());
            FluxInputs x = inputs(in, false);
            Tensor a = diffusers.forward(x);
            Tensor b = bfl.forward(x);
            Tensor c = comfy.forward(x);
            try {
                Tensor expected = ref.load("sample");
                assertArrayEquals(Tensors.shape(expected), Tensors.shape(a));
                assertTrue(allclose(a, expected, 1e-4, 1e-4, false), "diffusers forward matches the golden sample");
                assertTrue(equal(b, a), "plain BFL file gives the diffusers output bit for bit");
                assertTrue(equal(c, a), "ComfyUI-prefixed BFL file gives the diffusers output bit for bit");
            } finally {
                Tensors.closeAll(java.util.List.of(a, b, c));
            }
        }
    }

    @Test
    void bflFileWithoutAxesOrParamsNeedsThem() throws IOException {
        // Head dim 16 has no FLUX default RoPE split; without bfl_params.json the error says how to fix it.
        Path copy = tmp.resolve("flux1-tiny-schnell.safetensors");
        Files.copy(SCHNELL_BFL, copy);
        expect(ModelFormatException.class, () -> {
            try (PointerScope s = new PointerScope(); FluxTransformer m = FluxTransformer.load(copy, DType.F32)) {
                throw new AssertionError("loaded without axes: " + m.config());
            }
        }, copy.toString(), "head dim 16", "bfl_params.json");
    }

    // ---------------------------------------------------------------- bad forward inputs

    @Test
    void wrongShapedHiddenStates() {
        try (PointerScope s = new PointerScope();
             FluxTransformer model = FluxTransformer.load(SCHNELL_DIFFUSERS, DType.F32);
             SafetensorsFile in = SafetensorsFile.open(CASES.resolve("schnell_plain/inputs.safetensors"))) {
            FluxInputs good = inputs(in, false);
            FluxInputs bad = new FluxInputs(good.hiddenStates().narrow(2, 0, 63), good.encoderHiddenStates(),
                    good.pooledProjections(), good.timestep(), null, good.imgIds(), good.txtIds());
            expect(IllegalArgumentException.class, () -> model.forward(bad), "hidden_states", "[2, 24, 63]", "expected [2, 24, 64]");

            FluxInputs badText = new FluxInputs(good.hiddenStates(), good.encoderHiddenStates().narrow(2, 0, 31),
                    good.pooledProjections(), good.timestep(), null, good.imgIds(), good.txtIds());
            expect(IllegalArgumentException.class, () -> model.forward(badText), "encoder_hidden_states", "[2, 7, 31]",
                    "expected [2, 7, 32]");

            FluxInputs badIds = new FluxInputs(good.hiddenStates(), good.encoderHiddenStates(), good.pooledProjections(),
                    good.timestep(), null, good.imgIds().narrow(0, 0, 23), good.txtIds());
            expect(IllegalArgumentException.class, () -> model.forward(badIds), "img_ids", "[23, 3]", "expected [24, 3]");

            FluxInputs schnellWithGuidance = new FluxInputs(good.hiddenStates(), good.encoderHiddenStates(),
                    good.pooledProjections(), good.timestep(), good.timestep(), good.imgIds(), good.txtIds());
            expect(IllegalArgumentException.class, () -> model.forward(schnellWithGuidance), "guidance");
        }
    }

    @Test
    void devModelWithoutGuidance() {
        try (PointerScope s = new PointerScope();
             FluxTransformer model = FluxTransformer.load(DEV.resolve("transformer"), DType.F32);
             SafetensorsFile in = SafetensorsFile.open(CASES.resolve("dev_plain/inputs.safetensors"))) {
            assertTrue(model.config().guidanceEmbeds());
            FluxInputs noGuidance = inputs(in, false);
            expect(IllegalArgumentException.class, () -> model.forward(noGuidance), "guidance", "required");
            // The same inputs with guidance run.
            Tensor out = model.forward(inputs(in, true));
            try {
                assertArrayEquals(new long[] {2, 24, 64}, Tensors.shape(out));
            } finally {
                Tensors.closeAll(java.util.List.of(out));
            }
        }
    }
}
