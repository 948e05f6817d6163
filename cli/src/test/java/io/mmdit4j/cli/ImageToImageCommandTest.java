package io.mmdit4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.mmdit4j.GoldenData;
import io.mmdit4j.image.PngImages;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code generate --init-image / --strength / --mask} (FLUX demo) and {@code --scales} (the tiny SD3 folder): the records
 * and {@code --from} replaying each bit for bit, a changed init image or mask refused, and the errors.
 */
class ImageToImageCommandTest {
    private static final String SD3 = GoldenData.root().resolve("sd3_pipeline/models/sd35-tiny-large").toString();

    private static CheckGoldenCommandTest.Run run(String... args) {
        return CheckGoldenCommandTest.run(args);
    }

    private static JsonNode record(Path png) throws IOException {
        return new ObjectMapper().readTree(PngImages.readText(png).get("mmdit4j"));
    }

    @Test
    void img2imgAndInpaintingAreRecordedAndReplayedBitForBit(@TempDir Path tmp) throws IOException {
        Path init = tmp.resolve("init.png"), mask = tmp.resolve("mask.png");
        CheckGoldenCommandTest.Run r = run("generate", "--model", "flux-tiny-demo", "--prompt", "a wolf", "--width", "48", "--height", "32", "--steps", "2", "--out", init.toString());
        assertEquals(0, r.exit(), r.err());
        BufferedImage m = new BufferedImage(48, 32, BufferedImage.TYPE_BYTE_GRAY);
        for (int y = 0; y < 32; y++) for (int x = 0; x < 48; x++) m.getRaster().setSample(x, y, 0, x < 24 ? 0 : 255);
        ImageIO.write(m, "png", mask.toFile());

        Path i2i = tmp.resolve("i2i.png");
        r = run("generate", "--model", "flux-tiny-demo", "--prompt", "a red fox", "--init-image", init.toString(), "--strength", "0.5", "--steps", "4", "--seed", "5",
                "--out", i2i.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        JsonNode j = record(i2i);
        assertEquals(init.toString(), j.get("init_image").asText());
        assertEquals(0.5, j.get("strength").asDouble());
        assertEquals(48, j.get("width").asInt(), "the size is the init image's");
        assertEquals(32, j.get("height").asInt());
        Path again = tmp.resolve("again.png");
        r = run("generate", "--from", i2i.toString(), "--out", again.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        assertArrayEquals(Files.readAllBytes(i2i), Files.readAllBytes(again), "--from repeats image-to-image bit for bit");

        Path inp = tmp.resolve("inpaint.png");
        r = run("generate", "--model", "flux-tiny-demo", "--prompt", "a red fox", "--init-image", init.toString(), "--mask", mask.toString(), "--steps", "4", "--seed", "5",
                "--out", inp.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        assertEquals(0.6, record(inp).get("strength").asDouble(), "diffusers' default strength");
        assertEquals(mask.toString(), record(inp).get("mask").asText());
        Path inp2 = tmp.resolve("inpaint2.png");
        r = run("generate", "--from", inp.toString(), "--out", inp2.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        assertArrayEquals(Files.readAllBytes(inp), Files.readAllBytes(inp2), "--from repeats inpainting bit for bit");

        // --strength alone with --from keeps the recorded image
        r = run("generate", "--from", i2i.toString(), "--strength", "0.9", "--out", tmp.resolve("s09.png").toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        assertEquals(init.toString(), record(tmp.resolve("s09.png")).get("init_image").asText());

        // a mask changed since the record is refused (exit 2, nothing written)
        Files.write(mask, new byte[] {0}, StandardOpenOption.APPEND);
        r = run("generate", "--from", inp.toString(), "--out", tmp.resolve("changed.png").toString());
        assertEquals(2, r.exit(), r.out() + r.err());
        assertTrue(r.err().contains("has changed since it was recorded"), r.err());
        assertTrue(!Files.exists(tmp.resolve("changed.png")));
    }

    @Test
    void errorsBeforeAnyWork(@TempDir Path tmp) {
        Path out = tmp.resolve("x.png");
        assertEquals(2, run("generate", "--model", "flux-tiny-demo", "--prompt", "x", "--mask", tmp.resolve("m.png").toString(), "--out", out.toString()).exit());
        assertEquals(2, run("generate", "--model", "flux-tiny-demo", "--prompt", "x", "--strength", "0.5", "--out", out.toString()).exit());
        assertEquals(2, run("generate", "--model", "flux-tiny-demo", "--prompt", "x", "--init-image", tmp.resolve("missing.png").toString(), "--out", out.toString()).exit());
        CheckGoldenCommandTest.Run r = run("generate", "--model", "flux-tiny-demo", "--prompt", "x", "--scales", "4,8", "--out", out.toString());
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("scale-wise sampling (--scales): not supported"), r.err());
        r = run("generate", "--model", SD3, "--prompt", "x", "--scales", "4,6,8", "--steps", "4", "--out", out.toString());
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("3 scales for 4 steps"), r.err());
        assertTrue(!Files.exists(out));
    }

    @Test
    void scaleWiseSamplingIsRecordedAndReplayedBitForBit(@TempDir Path tmp) throws IOException {
        Path swd = tmp.resolve("swd.png");
        CheckGoldenCommandTest.Run r = run("generate", "--model", SD3, "--prompt", "a cardboard spaceship", "--scales", "4,6,8,8",
                "--sigmas", "1.0,0.8959,0.7371,0.6022,0", "--cfg", "0", "--mg-preset", "complexity", "--max-sequence-length", "16", "--seed", "0",
                "--out", swd.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        BufferedImage img = ImageIO.read(swd.toFile());
        assertEquals(64, img.getWidth(), "8 × the last scale");
        JsonNode j = record(swd);
        assertEquals(4, j.get("scales").size());
        assertEquals(6, j.get("scales").get(1).asInt());
        Path again = tmp.resolve("again.png");
        r = run("generate", "--from", swd.toString(), "--out", again.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        assertArrayEquals(Files.readAllBytes(swd), Files.readAllBytes(again), "--from repeats scale-wise sampling bit for bit");

        Path half = tmp.resolve("half.png");
        r = run("generate", "--from", swd.toString(), "--scales-fp16-noise", "--out", half.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        assertEquals("float16", record(half).get("scales_noise").asText());
        assertTrue(!java.util.Arrays.equals(Files.readAllBytes(swd), Files.readAllBytes(half)), "the fp16 noise cast changes the result");

        Path fixed = tmp.resolve("fixed.png");
        r = run("generate", "--model", SD3, "--prompt", "x", "--scales", "fixed", "--width", "48", "--height", "32", "--steps", "3", "--cfg", "0",
                "--max-sequence-length", "8", "--out", fixed.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        assertEquals("fixed", record(fixed).get("scales").asText());
        assertEquals(Map.of("w", 48, "h", 32), Map.of("w", ImageIO.read(fixed.toFile()).getWidth(), "h", ImageIO.read(fixed.toFile()).getHeight()));
    }
}
