package io.mmdit4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.mmdit4j.image.PngImages;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code generate}, {@code inspect --config} and {@code bench --pipeline} with HiDream (the generated tiny demo, the real config on meta). */
class HiDreamCommandsTest {
    @Test
    void generatesOnTheDemoAndRepeatsFromThePng(@TempDir Path tmp) throws IOException {
        Path png = tmp.resolve("fox.png");
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("generate", "--model", "hidream-tiny-demo", "--prompt", "a red fox",
                "--seed", "3", "--steps", "2", "--mg-preset", "aesthetics", "--cfg", "2", "--mg-rows", "reference-pair", "--out", png.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        assertTrue(r.err().contains("bundled demo model") && r.err().contains("HiDream-I1"), r.err());
        Map<String, String> text = PngImages.readText(png);
        assertTrue(text.get("mmdit4j").contains("\"rows\":\"reference-pair\"") && text.get("mmdit4j").contains("\"sample_size\":64"), text.get("mmdit4j"));
        Path again = tmp.resolve("again.png");
        r = CheckGoldenCommandTest.run("generate", "--from", png.toString(), "--out", again.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        assertArrayEquals(Files.readAllBytes(png), Files.readAllBytes(again), "--from repeats the image bit for bit");
    }

    @Test
    void inpaintingOnTheDemoIsRecordedAndRepeatsFromThePng(@TempDir Path tmp) throws IOException {
        Path init = tmp.resolve("init.png"), mask = tmp.resolve("mask.png"), png = tmp.resolve("inpaint.png");
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("generate", "--model", "hidream-tiny-demo", "--prompt", "a wolf",
                "--seed", "1", "--steps", "2", "--out", init.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        java.awt.image.BufferedImage m = new java.awt.image.BufferedImage(64, 64, java.awt.image.BufferedImage.TYPE_BYTE_GRAY);
        for (int y = 0; y < 64; y++) for (int x = 0; x < 64; x++) m.getRaster().setSample(x, y, 0, x < 32 ? 0 : 255);
        javax.imageio.ImageIO.write(m, "png", mask.toFile());
        r = CheckGoldenCommandTest.run("generate", "--model", "hidream-tiny-demo", "--prompt", "a red fox", "--init-image", init.toString(),
                "--mask", mask.toString(), "--strength", "0.75", "--steps", "4", "--seed", "3", "--out", png.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        String record = PngImages.readText(png).get("mmdit4j");
        assertTrue(record.contains("\"strength\":0.75") && record.contains("\"mask\":"), record);
        Path again = tmp.resolve("again.png");
        r = CheckGoldenCommandTest.run("generate", "--from", png.toString(), "--out", again.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        assertArrayEquals(Files.readAllBytes(png), Files.readAllBytes(again), "--from repeats HiDream inpainting bit for bit");
    }

    @Test
    void badHiDreamArgumentsAreClearErrors(@TempDir Path tmp) {
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("generate", "--model", "hidream-tiny-demo", "--prompt", "a", "--llama",
                tmp.resolve("nope").toString(), "--out", tmp.toString());
        assertEquals(2, r.exit(), r.err());
        assertTrue(r.err().contains("not a Llama text encoder folder"), r.err());
        r = CheckGoldenCommandTest.run("generate", "--model", "hidream-tiny-demo", "--prompt", "a", "--offload", "disk", "--out", tmp.toString());
        assertEquals(2, r.exit(), r.err());
        assertTrue(r.err().contains("expected text, blocks, text,blocks or none"), r.err());
        r = CheckGoldenCommandTest.run("generate", "--model", "hidream-tiny-demo", "--prompt", "a", "--frames", "5", "--out", tmp.toString());
        assertEquals(2, r.exit(), r.err());
        assertTrue(r.err().contains("video frames (--frames): not supported"), r.err());
    }

    @Test
    void realSizeDryRunOfHiDreamI1Full() {
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("inspect", "--config", "hidream-i1-full", "--size", "1024x1024");
        assertEquals(0, r.exit(), r.out() + r.err());
        String out = r.out();
        assertTrue(out.contains("4096 image tokens, T5 128 + Llama 128 tokens, joint sequence 4480"), out);
        assertTrue(out.contains("output [1, 16, 128, 128]"), out);
        assertTrue(out.contains("parameters: 17,105,733,184 (17.11 B)"), out);
        assertTrue(out.contains("active per token 12.01 B"), out);
        assertTrue(out.contains("bf16 34.21 GB"), out);
        assertTrue(out.matches("(?s).*attention [0-9.]+ TFLOP \\(48 calls\\).*"), out);
        r = CheckGoldenCommandTest.run("inspect", "--config", "hidream-i1-fast", "--size", "1024x768");
        assertEquals(0, r.exit(), r.out() + r.err());
        assertTrue(r.out().contains("image 1168x880 (area-preserving resize of 1024x768) -> latent 146x110, 4096 image tokens (zero-padded to max_seq)"),
                r.out());
    }

    @Test
    void pipelineBenchRunsOnTheDemo() throws IOException {
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("bench", "--pipeline", "--model", "hidream-tiny-demo", "--size", "64x64",
                "--steps", "2", "--text", "16", "--warmup", "0", "--reps", "1");
        assertEquals(0, r.exit(), r.out() + r.err());
        JsonNode j = new ObjectMapper().readTree(r.out().lines().filter(l -> l.startsWith("{")).findFirst().orElseThrow());
        assertEquals("hidream", j.get("family").asText());
        assertTrue(j.get("guided_step_ms_median").asDouble() > 0, j.toString());
    }
}
