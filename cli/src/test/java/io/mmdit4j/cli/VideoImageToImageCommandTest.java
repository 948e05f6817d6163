package io.mmdit4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.mmdit4j.image.PngImages;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code generate --init-image / --strength} on the video-VAE families: COSMOS (a picture) and HunyuanVideo (a still video
 * of {@code --frames} frames, to a GIF): recorded, and {@code --from} repeats each byte for byte; a mask is refused.
 */
class VideoImageToImageCommandTest {
    private static CheckGoldenCommandTest.Run run(String... args) {
        return CheckGoldenCommandTest.run(args);
    }

    @Test
    void cosmosAndHunyuanVideoTakeAnInitImageAndFromRepeatsThem(@TempDir Path tmp) throws IOException {
        Path init = tmp.resolve("init.png");
        CheckGoldenCommandTest.Run r = run("generate", "--model", "flux-tiny-demo", "--prompt", "a wolf", "--width", "32", "--height", "32", "--steps", "2",
                "--out", init.toString());
        assertEquals(0, r.exit(), r.err());

        Path cosmos = tmp.resolve("cosmos.png");
        r = run("generate", "--model", "cosmos-tiny-demo", "--prompt", "a red fox", "--init-image", init.toString(), "--strength", "0.5", "--steps", "4",
                "--seed", "5", "--out", cosmos.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        JsonNode j = new ObjectMapper().readTree(PngImages.readText(cosmos).get("mmdit4j"));
        assertEquals(init.toString(), j.get("init_image").asText());
        assertEquals(0.5, j.get("strength").asDouble());
        assertEquals(32, j.get("width").asInt(), "the size is the init image's");
        Path again = tmp.resolve("cosmos-again.png");
        r = run("generate", "--from", cosmos.toString(), "--out", again.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        assertArrayEquals(Files.readAllBytes(cosmos), Files.readAllBytes(again), "--from repeats COSMOS image-to-image byte for byte");

        Path gif = tmp.resolve("hunyuan.gif");
        r = run("generate", "--model", "hunyuan-video-tiny-demo", "--prompt", "a red fox", "--init-image", init.toString(), "--strength", "0.75",
                "--frames", "5", "--steps", "4", "--seed", "5", "--out", gif.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        Path gifAgain = tmp.resolve("hunyuan-again.gif");
        r = run("generate", "--from", gif.toString(), "--out", gifAgain.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        assertArrayEquals(Files.readAllBytes(gif), Files.readAllBytes(gifAgain), "--from repeats HunyuanVideo image-to-video byte for byte");

        r = run("generate", "--model", "cosmos-tiny-demo", "--prompt", "x", "--init-image", init.toString(), "--mask", init.toString(),
                "--out", tmp.resolve("no.png").toString());
        assertEquals(2, r.exit(), r.out() + r.err());
        assertTrue(r.err().contains("inpainting"), r.err());
        assertTrue(Files.notExists(tmp.resolve("no.png")));
    }
}
