package io.mmdit4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.mmdit4j.GoldenData;
import io.mmdit4j.image.A1111Infotext;
import io.mmdit4j.image.PngImages;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code mmdit generate} on an SD3 folder: family detection, CFG + guidance rows, sigma lists, metadata, --from, errors. */
class Sd3GenerateCommandTest {
    private static final String MODEL = GoldenData.root().resolve("sd3_pipeline/models/sd35-tiny-large").toString();

    @Test
    void cfgAndGuidanceWritePngsWithFullMetadataAndFromRepeatsThem(@TempDir Path tmp) throws IOException {
        Path first = tmp.resolve("cat.png");
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("generate", "--model", MODEL, "--prompt", "a cat in a hat",
                "--negative-prompt", "blurry", "--cfg", "4.5", "--seed", "3", "--width", "64", "--height", "48", "--steps", "2",
                "--max-sequence-length", "16", "--mg-preset", "aesthetics", "--mg-rows", "cond-neg", "--out", first.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        Map<String, String> text = PngImages.readText(first);
        Map<String, String> a1111 = A1111Infotext.parse(text.get("parameters"));
        assertEquals("a cat in a hat", a1111.get("Prompt"));
        assertEquals("blurry", a1111.get("Negative prompt"));
        assertEquals("4.5", a1111.get("CFG scale"));
        JsonNode m = new ObjectMapper().readTree(text.get("mmdit4j"));
        assertEquals("sd3", m.get("family").asText());
        assertEquals(4.5, m.get("cfg_scale").asDouble());
        assertFalse(m.has("guidance_scale"), "SD3 has no embedded guidance");
        assertEquals("blurry", m.get("negative_prompt").asText());
        assertEquals(2, m.get("steps").asInt());
        assertEquals(16, m.get("max_sequence_length").asInt());
        JsonNode g = m.get("modulation_guidance").get(0);
        assertEquals("aesthetics", g.get("label").asText());
        assertEquals(2.0, g.get("w").asDouble());
        assertEquals("2-", g.get("layers").asText());
        assertEquals("cond-neg", g.get("rows").asText());

        Path again = tmp.resolve("again.png");
        r = CheckGoldenCommandTest.run("generate", "--from", first.toString(), "--out", again.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        assertArrayEquals(Files.readAllBytes(first), Files.readAllBytes(again), "--from reproduces the image bit for bit");
    }

    @Test
    void recipeSigmasWithoutCfg(@TempDir Path tmp) throws IOException {
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("generate", "--model", MODEL, "--prompt", "a lighthouse", "--cfg", "0",
                "--sigmas", "1.0,0.9454,0.8959,0.7904,0.7371,0.6022,0", "--width", "32", "--height", "32", "--max-sequence-length", "8",
                "--seed", "3", "--batch", "2", "--out", tmp.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        Path f = tmp.resolve("000-seed3.png");
        assertTrue(Files.isRegularFile(f) && Files.isRegularFile(tmp.resolve("001-seed4.png")), r.out());
        JsonNode m = new ObjectMapper().readTree(PngImages.readText(f).get("mmdit4j"));
        assertEquals(6, m.get("steps").asInt(), "steps follow the sigma list");
        assertTrue(m.get("cfg_scale").asDouble() <= 1, "no CFG");
        assertEquals(7, m.get("sigmas").size());
    }

    @Test
    void theFamilyComesFromTheDescriptorOrModelIndex() {
        io.mmdit4j.models.ModelRegistry reg = new io.mmdit4j.models.ModelRegistry(Path.of("."), null);
        assertEquals("sd3", io.mmdit4j.models.Families.detect(reg.descriptor("sd3.5-large"), Path.of("nowhere")).name());
        assertEquals("", reg.descriptor("sd3.5-large").defaults().get("negative_prompt").asText());
        assertEquals("sd3", io.mmdit4j.models.Families.detect(null, Path.of(MODEL)).name());
        assertEquals("flux", io.mmdit4j.models.Families.detect(null, GoldenData.root().resolve("flux_pipeline/models/flux-tiny-dev")).name());
    }

    @Test
    void badArgumentsAreClearErrors(@TempDir Path tmp) {
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("generate", "--model", MODEL, "--prompt", "a", "--guidance", "3",
                "--out", tmp.toString());
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("--cfg"), r.err());
        r = CheckGoldenCommandTest.run("generate", "--model", MODEL, "--prompt", "a", "--sigmas", "1.0,x", "--out", tmp.toString());
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("'x' is not a number"), r.err());
        r = CheckGoldenCommandTest.run("generate", "--model", MODEL, "--prompt", "a", "--sigmas", "0.5,0.9", "--width", "32", "--height", "32",
                "--out", tmp.toString());
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("decrease"), r.err());
        r = CheckGoldenCommandTest.run("generate", "--model", MODEL, "--prompt", "a", "--mg-preset", "aesthetics", "--mg-rows", "uncond",
                "--out", tmp.toString());
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("both, cond or cond-neg"), r.err());
        String flux = GoldenData.root().resolve("flux_pipeline/models/flux-tiny-dev").toString();
        r = CheckGoldenCommandTest.run("generate", "--model", flux, "--prompt", "a", "--cfg", "4", "--out", tmp.toString());
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("--cfg") && r.err().contains("not supported") && r.err().contains("flux family"), r.err());
        Path file = Path.of(MODEL).resolve("transformer/diffusion_pytorch_model.safetensors");
        r = CheckGoldenCommandTest.run("generate", "--model", file.toString(), "--prompt", "a", "--out", tmp.toString());
        assertEquals(2, r.exit());
    }
}
