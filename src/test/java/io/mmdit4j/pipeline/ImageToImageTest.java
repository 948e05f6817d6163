package io.mmdit4j.pipeline;

import io.mmdit4j.image.PngImages;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.sampling.Noise;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.bytedeco.pytorch.global.torch.equal;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Image-to-image and inpainting through the generation API on the FLUX demo model: diffusers' strength truncation, the order
 * of each image's draws, strength 1 equal to text-to-image from the same noise, a batch image equal to itself alone, the
 * kept region of an inpainting, and the record of the init image (path and digest).
 */
class ImageToImageTest {
    private static Pipeline pipe;
    @TempDir
    static Path tmp;
    private static Path init, mask;

    @BeforeAll
    static void load() {
        pipe = Pipelines.load("flux-tiny-demo", LoadOptions.defaults());
        BufferedImage img = new BufferedImage(32, 32, BufferedImage.TYPE_INT_RGB);
        BufferedImage m = new BufferedImage(32, 32, BufferedImage.TYPE_BYTE_GRAY);
        for (int y = 0; y < 32; y++) {
            for (int x = 0; x < 32; x++) {
                img.setRGB(x, y, (x * 8) << 16 | (y * 8) << 8 | ((x + y) * 4));
                m.getRaster().setSample(x, y, 0, x < 16 ? 0 : x == 16 ? 127 : x == 24 ? 128 : 255);
            }
        }
        init = tmp.resolve("init.png");
        mask = tmp.resolve("mask.png");
        PngImages.write(init, img, Map.of());
        PngImages.write(mask, m, Map.of());
    }

    @AfterAll
    static void close() {
        pipe.close();
    }

    private static GenerationRequest.Builder request() {
        return GenerationRequest.builder().prompt("a fox").steps(4).maxSequenceLength(16);
    }

    @Test
    void strengthTruncationIsDiffusers() {
        // the README's examples: float64 products, truncation toward zero
        assertEquals(1, InitImage.startStep(4, 0.6));
        assertEquals(3, InitImage.startStep(5, 0.3));
        assertEquals(4, InitImage.startStep(6, 0.3), "6·0.3 = 1.7999999999999998 → int(4.2)");
        assertEquals(0, InitImage.startStep(4, 1.0));
        assertEquals(0, InitImage.startStep(2, 0.9), "int(0.2) = 0: a strength below 1 can run every step");
        assertThrows(IllegalArgumentException.class, () -> InitImage.of(init, 0.0));
        assertThrows(IllegalArgumentException.class, () -> InitImage.of(init, 1.5));
        assertEquals(1, InitImage.of(init, 0.01).stepsRun(4), "any positive strength runs a step: int(3.96) = 3");
        assertThrows(InvalidRequestException.class, () -> pipe.resolve(request().option(InitImage.of(init, 1e-17)).build()),
                "4 − 4e-17 is 4.0 in float64: t_start 4, no step");
    }

    @Test
    void theSizeIsTheImagesAndTheScheduleIsTruncated() {
        GenerationSettings s = pipe.resolve(request().seed(5).option(InitImage.of(init, 0.6)).build());
        assertEquals(32, s.width());
        assertEquals(32, s.height());
        try (GenerationResult r = pipe.generate(s, null, null)) {
            assertEquals(3, r.timings().steps().length, "4 steps at strength 0.6 run 3");
        }
    }

    @Test
    void strengthOneIsTextToImageFromTheSameNoise() {
        long[] shape = Noise.fluxLatentShape(1, 32, 32);
        try (PointerScope scope = new PointerScope()) {
            Tensor eps = Noise.randn(shape, 1, DType.F32), noise = Noise.randn(shape, 2, DType.F32);
            GenerationRequest i2i = request().option(InitImage.of(init, 1.0)).option(new GivenDraws(List.of(eps, noise))).build();
            GenerationRequest t2i = request().size(32, 32).initialNoise(noise).build();
            try (GenerationResult a = pipe.generate(i2i); GenerationResult b = pipe.generate(t2i)) {
                assertTrue(equal(a.latents(), b.latents()), "σ = 1: x_start = 1·noise + 0·image = noise, bit for bit");
            }
        }
    }

    @Test
    void eachImageDrawsItsPosteriorSampleThenItsNoiseFromItsOwnSeed() {
        // image 1 of a batch (seed 6) equals the same request alone with seed 6, up to batch rounding
        try (GenerationResult batch = pipe.generate(request().imagesPerPrompt(2).seeds(5, 6).option(InitImage.of(init, 0.6)).build());
             GenerationResult alone = pipe.generate(request().seed(6).option(InitImage.of(init, 0.6)).build())) {
            float[] a = Tensors.toFloats(batch.images().select(0, 1)), b = Tensors.toFloats(alone.images().select(0, 0));
            for (int i = 0; i < a.length; i++) assertEquals(b[i], a[i], 1e-5);
            assertFalse(equal(batch.images().select(0, 0), batch.images().select(0, 1)), "two seeds, two images");
            // the record of image 1 alone makes it again
            GenerationSettings one = batch.settings().forImage(1);
            assertArrayEquals(new long[] {6}, one.seeds());
            assertEquals(batch.settings().option(InitImage.class), one.option(InitImage.class));
        }
        // the draws' order: eps = the seed's first draw, noise its second (given draws in that order repeat the run exactly)
        long[] shape = Noise.fluxLatentShape(1, 32, 32);
        try (Noise.Stream st = Noise.Stream.perRow(shape, new long[] {6}); PointerScope scope = new PointerScope()) {
            Tensor eps = st.next(DType.F32), noise = st.next(DType.F32);
            try (GenerationResult seeded = pipe.generate(request().seed(6).option(InitImage.of(init, 0.6)).build());
                 GenerationResult given = pipe.generate(request().seed(99).option(InitImage.of(init, 0.6)).option(new GivenDraws(List.of(eps, noise))).build())) {
                assertTrue(equal(seeded.latents(), given.latents()));
            }
        }
    }

    @Test
    void inpaintingKeepsTheUnmaskedRegionAsTheInitLatents() {
        GenerationSettings s = pipe.resolve(request().option(InitImage.of(init, 0.6)).option(InpaintMask.of(mask)).build());
        FamilyPipeline<?> f = pipe.unwrap(FamilyPipeline.class);
        try (GenerationResult r = pipe.generate(s, null, null);
             ImageToImage.Start start = ImageToImage.start(f, s, ImageToImage.truncate(f.schedule(s), s));
             PointerScope scope = new PointerScope()) {
            long[] shape = f.latentSpace().shape(s);
            Tensor lat = io.mmdit4j.flux.FluxLatents.unpack(r.latents(), shape[2], shape[3]);
            Tensor init = io.mmdit4j.flux.FluxLatents.unpack(start.imageLatents(), shape[2], shape[3]);
            Tensor m = ImageToImage.maskLatent(s, shape); // [1, 1, 4, 4]: latent column j is pixel column 8j (nearest)
            assertEquals(0f, m.narrow(3, 0, 3).sum().item_float(), "0 and 127 (pixel column 16) keep");
            assertEquals(4f, m.select(3, 3).sum().item_float(), "128 (pixel column 24) repaints");
            assertTrue(equal(lat.narrow(3, 0, 3), init.narrow(3, 0, 3)), "the kept columns are the init latents exactly");
            assertFalse(equal(lat.narrow(3, 3, 1), init.narrow(3, 3, 1)), "the repainted column is the model's");
        }
    }

    @Test
    void theRecordKeepsPathAndDigestAndRefusesAChangedImage() throws IOException {
        Path copy = tmp.resolve("copy.png");
        Files.copy(init, copy);
        GenerationSettings s = pipe.resolve(request().option(InitImage.of(copy, 0.5)).build());
        var json = s.toJson();
        assertEquals(copy.toString(), json.get("init_image").asText());
        assertEquals(64, json.get("init_image_sha256").asText().length());
        assertEquals(0.5, json.get("strength").asDouble());
        GenerationSettings.Recorded back = GenerationSettings.read(json, "test");
        assertEquals(s.option(InitImage.class), back.request().option(InitImage.class));
        Files.write(copy, new byte[] {1, 2, 3}, java.nio.file.StandardOpenOption.APPEND);
        InvalidRequestException e = assertThrows(InvalidRequestException.class, () -> pipe.resolve(back.request()));
        assertTrue(e.getMessage().contains("has changed since it was recorded"), e.getMessage());
        assertThrows(InvalidRequestException.class, () -> pipe.resolve(request().option(InpaintMask.of(mask)).build()), "a mask needs an init image");
    }
}
