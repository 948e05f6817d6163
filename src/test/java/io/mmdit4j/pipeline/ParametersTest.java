package io.mmdit4j.pipeline;

import io.mmdit4j.GoldenData;
import io.mmdit4j.guidance.CfgRows;
import io.mmdit4j.guidance.Direction;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.image.A1111Infotext;
import io.mmdit4j.image.PngImages;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The metadata other tools read: the A1111 {@code parameters} text parsed with A1111's own rules gives back every value
 * (prompts with commas, colons, quotes and line breaks included), no chunk is named {@code prompt} or {@code workflow}
 * (ComfyUI would {@code JSON.parse} it), and ASCII text goes into {@code tEXt} chunks as PIL writes them.
 */
class ParametersTest {
    private static final String PROMPT = "a lighthouse, at dusk: \"golden\" hour\nsecond line, ünïcödé";
    private static final String NEGATIVE = "blurry, low quality: jpeg";

    private static GenerationSettings sd3(PreparedModel m) {
        return m.resolve(GenerationRequest.builder().prompt(PROMPT).size(64, 48).steps(3).seed(-1L).maxSequenceLength(16)
                .cfg(4.5, java.util.List.of(NEGATIVE)).sigmas(1.0, 0.5, 0.25, 0)
                .guide(Direction.of("vivid, sharp: detailed", "washed out").label("vivid").w(2.5).layers(LayerSchedule.parse("1-")).rows(CfgRows.COND))
                .build());
    }

    @Test
    void a1111ReadsEveryValueBack() {
        PreparedModel m = Pipelines.prepare(GoldenData.root().resolve("sd3_pipeline/models/sd35-tiny-large").toString(), LoadOptions.defaults());
        GenerationSettings s = sd3(m);
        Map<String, String> meta = s.metadata(0);
        Map<String, String> a = A1111Infotext.parse(meta.get("parameters"));
        assertEquals(PROMPT, a.get("Prompt"));
        assertEquals(NEGATIVE, a.get("Negative prompt"));
        assertEquals("3", a.get("Steps"));
        assertEquals("Euler", a.get("Sampler"));
        assertEquals("4.5", a.get("CFG scale"));
        assertEquals("18446744073709551615", a.get("Seed"), "PyTorch's unsigned seed");
        assertEquals("64x48", a.get("Size"));
        assertEquals("sd35-tiny-large", a.get("Model"), "a folder by its name");
        assertEquals("1.0,0.5,0.25,0.0", a.get("Sigmas"));
        assertEquals("vivid", a.get("MG direction"));
        assertEquals("2.5", a.get("MG w"));
        assertEquals("1-", a.get("MG layers"));
        assertEquals("cond", a.get("MG rows"));
        assertEquals("vivid, sharp: detailed", a.get("MG pos"));
        assertEquals("washed out", a.get("MG neg"));
        assertEquals(Parameters.fields(s).size() + 2, a.size(), "every pair of the last line, and the two prompts: " + a);
        assertEquals(Map.of("parameters", 0, "seed", 1, "mmdit4j", 2).keySet(), meta.keySet());
        A1111Infotext.requireComfyCompatible(meta);
    }

    @Test
    void imageToImageAndScaleWiseFields(@TempDir Path tmp) throws IOException {
        Path init = tmp.resolve("init.png");
        PngImages.write(init, new BufferedImage(32, 32, BufferedImage.TYPE_INT_RGB), Map.of());
        PreparedModel demo = Pipelines.prepare("flux-tiny-demo", LoadOptions.defaults());
        GenerationSettings s = demo.resolve(GenerationRequest.builder().prompt("a fox").option(InitImage.of(init, 0.75)).build());
        Map<String, String> a = A1111Infotext.parse(s.metadata(0).get("parameters"));
        assertEquals("0.75", a.get("Denoising strength"), "A1111's img2img key");
        assertEquals("3.5", a.get("Distilled CFG Scale"), "Forge's key for FLUX's embedded guidance");
        assertEquals("32x32", a.get("Size"));
        assertEquals("flux-tiny-demo", a.get("Model"));
        assertEquals("", a.get("Negative prompt"));
        assertNull(a.get("CFG scale"), "FLUX without true CFG");

        PreparedModel sd3 = Pipelines.prepare(GoldenData.root().resolve("sd3_pipeline/models/sd35-tiny-large").toString(), LoadOptions.defaults());
        GenerationSettings w = sd3.resolve(GenerationRequest.builder().prompt("x").cfg(0).sigmas(1.0, 0.5, 0).option(ScaleWise.of(4, 8)).build());
        Map<String, String> b = A1111Infotext.parse(w.metadata(0).get("parameters"));
        assertEquals("SwD", b.get("Sampler"));
        assertEquals("4,8", b.get("Scales"));
        assertEquals("64x64", b.get("Size"), "8 × the last scale");

        PreparedModel hd = Pipelines.prepare("hidream-tiny-demo", LoadOptions.builder()
                .registry(io.mmdit4j.hidream.HiDreamDemo.registry(tmp.resolve("home"))).build());
        GenerationSettings h = hd.resolve(GenerationRequest.builder().prompt("x").size(64, 16).build());
        Map<String, String> c = A1111Infotext.parse(h.metadata(0).get("parameters"));
        assertEquals("128x32", c.get("Size"), "the image's size after HiDream's area-preserving resize to 64² (the request's 64x16 is in the record)");
        assertEquals("64", c.get("Sample size"));
        assertEquals("Model's scheduler", c.get("Sampler"));
    }

    @Test
    void thePngHasNoPromptChunkAndAsciiTextInTextChunks(@TempDir Path tmp) throws IOException {
        PreparedModel demo = Pipelines.prepare("flux-tiny-demo", LoadOptions.defaults());
        GenerationSettings s = demo.resolve(GenerationRequest.builder().prompt("a plain wolf").seed(3).build());
        Path png = tmp.resolve("wolf.png");
        PngImages.write(png, new BufferedImage(8, 8, BufferedImage.TYPE_INT_RGB), s.metadata(0));
        Map<String, String> text = PngImages.readText(png);
        assertFalse(text.containsKey("prompt"), "ComfyUI parses a 'prompt' chunk as its JSON graph");
        assertFalse(text.containsKey("workflow"));
        A1111Infotext.requireComfyCompatible(text);
        assertEquals("a plain wolf", A1111Infotext.parse(text.get("parameters")).get("Prompt"));
        assertEquals(s.toJson().toString(), text.get("mmdit4j"), "the full record --from reads");
        String raw = new String(Files.readAllBytes(png), StandardCharsets.ISO_8859_1);
        assertTrue(raw.contains("tEXtparameters\0a plain wolf\n"), "ASCII text in a tEXt chunk, as A1111 (PIL) writes it");
        assertFalse(raw.contains("iTXt"), "no iTXt chunk for ASCII text");

        GenerationSettings u = demo.resolve(GenerationRequest.builder().prompt("ein Kätzchen ☕").seed(3).build());
        Path png2 = tmp.resolve("u.png");
        PngImages.write(png2, new BufferedImage(8, 8, BufferedImage.TYPE_INT_RGB), u.metadata(0));
        assertEquals("ein Kätzchen ☕", A1111Infotext.parse(PngImages.readText(png2).get("parameters")).get("Prompt"), "beyond Latin-1: UTF-8 iTXt");
    }
}
