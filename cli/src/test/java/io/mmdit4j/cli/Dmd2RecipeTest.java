package io.mmdit4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.mmdit4j.GoldenData;
import io.mmdit4j.image.PngImages;
import io.mmdit4j.io.SafetensorsWriter;
import io.mmdit4j.models.ModelDescriptor;
import io.mmdit4j.models.ModelRegistry;
import io.mmdit4j.nn.Linear;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.sd3.Sd3Transformer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.bytedeco.pytorch.global.torch.createCPUGenerator;
import static org.bytedeco.pytorch.global.torch.randn;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * models/sd3.5-large-dmd2.json: the distilled recipe of METHOD.md (LoRA on SD3.5-Large, six fixed sigmas reaching the
 * model unshifted, no CFG, guidance w 2 from block 2), and {@code generate} running it from the descriptor alone.
 */
class Dmd2RecipeTest {
    private static final double[] SIGMAS = {1.0, 0.9454, 0.8959, 0.7904, 0.7371, 0.6022, 0.0};

    @Test
    void descriptorCarriesTheRecipe() {
        ModelDescriptor d = new ModelRegistry(Path.of("."), null).descriptor("sd3.5-large-dmd2");
        assertEquals("sd3", d.family());
        try {
            assertEquals("sd3.5-large", new ObjectMapper().readTree(d.file().toFile()).path("config").asText(), "the SD3.5-Large transformer");
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        JsonNode defaults = d.defaults();
        double[] sigmas = new double[defaults.get("sigmas").size()];
        for (int i = 0; i < sigmas.length; i++) sigmas[i] = defaults.get("sigmas").get(i).asDouble();
        assertArrayEquals(SIGMAS, sigmas);
        assertEquals(6, defaults.get("steps").asInt());
        assertTrue(defaults.get("cfg_scale").asDouble() <= 1.0, "no CFG");
        assertNotEquals("fp16", defaults.get("dtype").asText(), "fp16 weights are computed in a safe dtype");
        assertEquals("yresearch/stable-diffusion-3.5-large-dmd2", defaults.path("lora").path("hf_repo").asText());
        assertEquals(2.0, d.recommendedGuidance().get(0).w());
        assertEquals("2-", d.recommendedGuidance().get(0).layers());
    }

    @Test
    void generateRunsTheRecipeFromTheDescriptor(@TempDir Path tmp) throws IOException {
        Path models = GoldenData.root().resolve("sd3_pipeline/models").toAbsolutePath();
        Path lora = tmp.resolve("dmd2-tiny-lora.safetensors");
        writeRandomPeftLora(models.resolve("sd35-tiny-large/transformer"), lora);

        // A home whose descriptor is the real one pointed at the tiny folder and LoRA.
        Path home = tmp.resolve("home");
        Files.createDirectories(home.resolve("models"));
        ObjectMapper json = new ObjectMapper();
        ObjectNode d = (ObjectNode) json.readTree(Files.readString(Path.of("models/sd3.5-large-dmd2.json")));
        d.put("name", "dmd2-tiny");
        ((ObjectNode) d.get("source")).put("local_dir", "sd35-tiny-large");
        ObjectNode defaults = (ObjectNode) d.get("defaults");
        defaults.put("width", 32).put("height", 32).put("max_sequence_length", 8).put("dtype", "fp32");
        ((ObjectNode) defaults.get("lora")).put("file", lora.toString());
        Files.writeString(home.resolve("models/dmd2-tiny.json"), json.writeValueAsString(d));

        String savedHome = System.getProperty("mmdit.home"), savedModels = System.getProperty("mmdit.models");
        try {
            System.setProperty("mmdit.home", home.toString());
            System.setProperty("mmdit.models", models.toString());
            Path out = tmp.resolve("dmd2.png");
            CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("generate", "--model", "dmd2-tiny", "--prompt", "a lighthouse",
                    "--mg-preset", "aesthetics", "--seed", "7", "--out", out.toString());
            assertEquals(0, r.exit(), r.out() + r.err());
            assertTrue(r.err().contains("lora:"), "the LoRA report is printed: " + r.err());
            JsonNode m = json.readTree(PngImages.readText(out).get("mmdit4j"));
            assertEquals(6, m.get("steps").asInt());
            assertEquals(7, m.get("sigmas").size());
            assertEquals(0.9454, m.get("sigmas").get(1).asDouble());
            assertTrue(m.path("cfg_scale").asDouble(0) <= 1.0, "no CFG: " + m);
            assertEquals(lora.toString(), m.get("loras").get(0).get("file").asText());
            assertEquals(2.0, m.get("modulation_guidance").get(0).get("w").asDouble());
            assertEquals("2-", m.get("modulation_guidance").get(0).get("layers").asText());

            // --from repeats the recipe (LoRA included) bit for bit
            Path again = tmp.resolve("again.png");
            r = CheckGoldenCommandTest.run("generate", "--from", out.toString(), "--out", again.toString());
            assertEquals(0, r.exit(), r.out() + r.err());
            assertArrayEquals(Files.readAllBytes(out), Files.readAllBytes(again));

            // the LoRA changes the image: without it (scale 0) the bytes differ
            Path plain = tmp.resolve("nolora.png");
            r = CheckGoldenCommandTest.run("generate", "--model", "dmd2-tiny", "--prompt", "a lighthouse", "--mg-preset", "aesthetics",
                    "--seed", "7", "--lora", lora + ":0", "--out", plain.toString());
            assertEquals(0, r.exit(), r.out() + r.err());
            assertTrue(!java.util.Arrays.equals(Files.readAllBytes(out), Files.readAllBytes(plain)), "the LoRA must change the image");
        } finally {
            restore("mmdit.home", savedHome);
            restore("mmdit.models", savedModels);
        }
    }

    /** A rank-4 diffusers/PEFT LoRA on every Linear of the given transformer, with random factors large enough to matter. */
    private static void writeRandomPeftLora(Path transformer, Path file) {
        try (Sd3Transformer t = Sd3Transformer.load(transformer, DType.F32); PointerScope scope = new PointerScope()) {
            GeneratorOptional gen = new GeneratorOptional(createCPUGenerator(11));
            TensorOptions f32 = new TensorOptions(org.bytedeco.pytorch.global.torch.ScalarType.Float);
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            for (Map.Entry<String, Linear> e : t.linears().entrySet()) {
                long in = e.getValue().inFeatures(), out = e.getValue().outFeatures();
                tensors.put("transformer." + e.getKey() + ".lora_A.weight", randn(new long[] {4, in}, gen, f32).mul(new org.bytedeco.pytorch.Scalar(0.3)));
                tensors.put("transformer." + e.getKey() + ".lora_B.weight", randn(new long[] {out, 4}, gen, f32).mul(new org.bytedeco.pytorch.Scalar(0.3)));
            }
            SafetensorsWriter.write(file, tensors);
        }
    }

    private static void restore(String key, String value) {
        if (value == null) System.clearProperty(key);
        else System.setProperty(key, value);
    }
}
