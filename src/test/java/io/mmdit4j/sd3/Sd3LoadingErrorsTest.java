package io.mmdit4j.sd3;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.mmdit4j.GoldenData;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.io.SafetensorsWriter;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.runtime.Torch;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Loading errors of the SD3 transformer, each naming the file, the key and expected versus found. */
class Sd3LoadingErrorsTest {
    @TempDir
    Path tmp;

    private static Path sd35m() {
        return GoldenData.root().resolve("sd3_transformer/models/sd35m/transformer");
    }

    @BeforeAll
    static void init() {
        Torch.init();
    }

    /** A copy of the sd35m diffusers folder whose weights and config.json went through the edits; returns the folder. */
    private Path copy(Consumer<Map<String, Tensor>> edit, Consumer<ObjectNode> config) throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("transformer"));
        ObjectMapper json = new ObjectMapper();
        ObjectNode cfg = (ObjectNode) json.readTree(sd35m().resolve("config.json").toFile());
        config.accept(cfg);
        Files.writeString(dir.resolve("config.json"), json.writeValueAsString(cfg));
        try (PointerScope s = new PointerScope()) {
            Map<String, Tensor> all = Sd3Original.readAll(sd35m().resolve("diffusion_pytorch_model.safetensors"));
            edit.accept(all);
            SafetensorsWriter.write(dir.resolve("diffusion_pytorch_model.safetensors"), all, Map.of("format", "pt"));
        }
        return dir;
    }

    /** A single file in the original layout (with prefix) made from sd35m after {@code edit}. */
    private Path original(Consumer<Map<String, Tensor>> edit) {
        Path f = tmp.resolve("original.safetensors");
        Sd3Config c = Sd3Config.fromDiffusersConfig(sd35m().resolve("config.json"));
        try (PointerScope s = new PointerScope()) {
            Map<String, Tensor> o = Sd3Original.fromDiffusers(Sd3Original.readAll(sd35m().resolve("diffusion_pytorch_model.safetensors")), c,
                    Sd3KeyMap.PREFIX);
            edit.accept(o);
            SafetensorsWriter.write(f, o, Map.of());
        }
        return f;
    }

    private static void loadFails(Path path, String... fragments) {
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> {
            try (Sd3Transformer m = Sd3Transformer.load(path, DType.F32)) {
                throw new AssertionError("loaded " + path + " as " + m.config());
            }
        });
        for (String f : fragments) assertTrue(e.getMessage().contains(f), () -> "message should contain '" + f + "': " + e.getMessage());
    }

    @Test
    void unmodifiedCopyLoads() throws IOException {
        try (Sd3Transformer m = Sd3Transformer.load(copy(w -> { }, c -> { }), DType.F32)) {
            assertEquals(java.util.List.of(0), m.config().dualAttentionLayers());
        }
    }

    @Test
    void missingTensor() throws IOException {
        Path dir = copy(w -> assertTrue(w.remove("transformer_blocks.0.attn2.to_q.weight") != null), c -> { });
        loadFails(dir, dir.toString(), "missing tensor 'transformer_blocks.0.attn2.to_q.weight'", "expected shape [32, 32]");
    }

    @Test
    void wrongShape() throws IOException {
        Path dir = copy(w -> w.put("pos_embed.pos_embed", w.get("pos_embed.pos_embed").narrow(1, 0, 100)), c -> { });
        loadFails(dir, "'pos_embed.pos_embed'", "[1, 100, 32]", "expected [1, 144, 32]");
    }

    @Test
    void unexpectedTensor() throws IOException {
        Path dir = copy(w -> w.put("foo.weight", Tensors.fromFloats(new float[] {1, 2}, 2)), c -> { });
        loadFails(dir, "1 unexpected tensor(s)", "'foo.weight'");
    }

    @Test
    void configWithoutTheDualAttentionTheWeightsHave() throws IOException {
        Path dir = copy(w -> { }, c -> c.putArray("dual_attention_layers"));
        loadFails(dir, "'transformer_blocks.0.norm1.linear.weight'", "[288, 32]", "expected [192, 32]");
    }

    @Test
    void configWithoutQkNormsTheWeightsHave() throws IOException {
        Path dir = copy(w -> { }, c -> c.putNull("qk_norm"));
        loadFails(dir, "unexpected tensor(s)", "norm_added_k.weight");
    }

    @Test
    void unsupportedQkNormAndForeignConfigClass() throws IOException {
        Path dir = copy(w -> { }, c -> c.put("qk_norm", "layer_norm"));
        loadFails(dir, "config.json", "qk_norm \"layer_norm\" is not supported");
        Path flux = GoldenData.root().resolve("flux_transformer/models/schnell/transformer");
        loadFails(flux, "_class_name is 'FluxTransformer2DModel', expected SD3Transformer2DModel");
    }

    @Test
    void nonSd3SingleFiles() throws IOException {
        Path fluxFile = GoldenData.root().resolve("flux_transformer/models/schnell/transformer/diffusion_pytorch_model.safetensors");
        loadFails(fluxFile, fluxFile.toString(), "not a SD3 transformer checkpoint", "missing tensor 'pos_embed.proj.weight'");
        Path bfl = GoldenData.root().resolve("flux_transformer/models/schnell/flux1-tiny-schnell.safetensors");
        loadFails(bfl, "not a SD3 transformer checkpoint");
        Path vae = GoldenData.root().resolve("vae/models/vae/diffusion_pytorch_model.safetensors");
        loadFails(vae, "not a SD3 transformer checkpoint");
    }

    @Test
    void originalLayoutErrors() {
        Path f = original(o -> assertTrue(o.remove(Sd3KeyMap.PREFIX + "x_embedder.proj.weight") != null));
        loadFails(f, f.toString(), "not an SD3 transformer checkpoint", "'model.diffusion_model.x_embedder.proj.weight'");

        f = original(o -> o.put(Sd3KeyMap.PREFIX + "joint_blocks.1.x_block.attn.qkv.bias",
                o.get(Sd3KeyMap.PREFIX + "joint_blocks.1.x_block.attn.qkv.bias").narrow(0, 0, 95)));
        loadFails(f, f.toString(), "'model.diffusion_model.joint_blocks.1.x_block.attn.qkv.bias'", "95 rows", "multiple of 3");

        f = original(o -> o.remove(Sd3KeyMap.PREFIX + "joint_blocks.1.context_block.mlp.fc2.weight"));
        loadFails(f, "missing tensor 'transformer_blocks.1.ff_context.net.2.weight'");

        f = original(o -> o.put(Sd3KeyMap.PREFIX + "joint_blocks.0.x_block.unknown.weight", Tensors.fromFloats(new float[] {1}, 1)));
        loadFails(f, "unexpected", "'model.diffusion_model.joint_blocks.0.x_block.unknown.weight'");
    }

    @Test
    void lastBlockThatKeepsItsTextStreamIsRejected() {
        // a 2-block file made of blocks 0 and 1 of sd35m: its last block has a 6D text modulation, which SD3 never has
        Path f = original(o -> o.keySet().removeIf(k -> k.startsWith(Sd3KeyMap.PREFIX + "joint_blocks.2.")));
        loadFails(f, "'transformer_blocks.1.norm1_context.linear.weight' has 192 rows, expected 64");
    }
}
