package io.mmdit4j.pipeline;

import io.mmdit4j.cosmos.CosmosPipeline;
import io.mmdit4j.hunyuan.HunyuanVideoPipeline;
import io.mmdit4j.image.PngImages;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.sampling.Noise;
import io.mmdit4j.sampling.Schedule;
import io.mmdit4j.vae.AutoencoderKL;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.awt.image.BufferedImage;
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
 * Image-to-image for the families with a video VAE (their encoders are checked against diffusers in the reference cases
 * of {@code src/test/reference}): COSMOS encodes a picture as a one-frame video and starts from {@code image_lat + σ₀·noise}
 * (EDM latents), HunyuanVideo encodes it as a still video of the request's frames and starts from
 * {@code σ₀·noise + (1 − σ₀)·image_lat}; both draw the posterior sample first and the noise second from each image's seed,
 * and run the strength-truncated schedule.
 */
class VideoImageToImageTest {
    @TempDir
    static Path tmp;
    private static Path init;

    @BeforeAll
    static void picture() {
        BufferedImage img = new BufferedImage(32, 32, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < 32; y++) {
            for (int x = 0; x < 32; x++) img.setRGB(x, y, (x * 8) << 16 | (y * 8) << 8 | ((x + y) * 4));
        }
        init = tmp.resolve("init.png");
        PngImages.write(init, img, Map.of());
    }

    private static GenerationRequest.Builder request() {
        return GenerationRequest.builder().prompt("a fox").steps(4).maxSequenceLength(16).seed(7);
    }

    /** The seed's first two draws of {@code shape}: the posterior sample's eps, then the noise. */
    private static Tensor[] draws(long[] shape, long seed) {
        try (Noise.Stream st = Noise.Stream.perRow(shape, new long[] {seed})) {
            return new Tensor[] {st.next(DType.F32), st.next(DType.F32)};
        }
    }

    private static void assertClose(Tensor expected, Tensor actual, double tol, String what) {
        assertArrayEquals(Tensors.shape(expected), Tensors.shape(actual), what + ": shape");
        float[] e = Tensors.toFloats(expected), a = Tensors.toFloats(actual);
        for (int i = 0; i < e.length; i++) assertEquals(e[i], a[i], tol * Math.max(1, Math.abs(e[i])), what + " at " + i);
    }

    @Test
    void cosmosStartsFromTheOneFrameImageLatentsPlusSigmaTimesNoise() {
        try (Pipeline p = Pipelines.load("cosmos-tiny-demo"); PointerScope scope = new PointerScope()) {
            GenerationSettings s = p.resolve(request().option(InitImage.of(init, 0.75)).build());
            FamilyPipeline<?> f = p.unwrap(FamilyPipeline.class);
            CosmosPipeline cosmos = p.unwrap(CosmosPipeline.class);
            Schedule schedule = ImageToImage.truncate(f.schedule(s), s);
            assertEquals(3, schedule.steps(), "4 steps at strength 0.75 run the last 3");
            long[] shape = f.latentSpace().shape(s);
            assertArrayEquals(new long[] {1, 16, 1, 4, 4}, shape);
            Tensor[] d = draws(shape, 7);
            Tensor pixels = InputImages.pixels(List.of(init), 32, 32, "init image");
            Tensor expected;
            try (AutoencoderKL.Encoded post = cosmos.vae().encode(pixels.unsqueeze(2))) {
                Tensor z = post.mean().add(post.std().mul(d[0]));
                Tensor imageLatents = cosmos.vae().normalize(z, cosmos.schedulerConfig().sigmaData());
                expected = imageLatents.add(d[1].mul(new Scalar((double) schedule.sigma(0))));       // EDM: x0 + σ·n
            }
            assertTrue(schedule.sigma(0) > 1, "the second Karras σ of four (≈ 9.8) is above 1: the flow form's (1 − σ) would flip the image");
            try (ImageToImage.Start start = ImageToImage.start(f, s, schedule)) {
                assertClose(expected, start.latents(), 1e-6, "the start latents");
            }
            try (GenerationResult r = p.generate(s, null, null)) {
                assertEquals(3, r.timings().steps().length);
                try (GenerationResult again = p.generate(p.resolve(GenerationSettings.read(r.settings().toJson(), "test").request()), null, null)) {
                    assertTrue(equal(r.images(), again.images()), "the record repeats the run bit for bit");
                }
            }
        }
    }

    @Test
    void cosmosAtALowStrengthEndsNearTheImageLatents() {
        try (Pipeline p = Pipelines.load("cosmos-tiny-demo"); PointerScope scope = new PointerScope()) {
            GenerationSettings s = p.resolve(request().steps(20).option(InitImage.of(init, 0.05)).build());
            FamilyPipeline<?> f = p.unwrap(FamilyPipeline.class);
            Schedule schedule = ImageToImage.truncate(f.schedule(s), s);
            assertEquals(1, schedule.steps());
            try (ImageToImage.Start start = ImageToImage.start(f, s, schedule); GenerationResult r = p.generate(s, null, null)) {
                Tensor diff = r.latents().sub(start.imageLatents()).abs().max();
                float scale = start.imageLatents().abs().max().item_float();
                assertTrue(diff.item_float() < 0.05 * scale, "one step from σ " + schedule.sigma(0) + " moves the image latents by " + diff.item_float()
                        + " (their largest: " + scale + ")");
            }
        }
    }

    @Test
    void hunyuanVideoEncodesAStillVideoAndStartsInFlowForm() {
        try (Pipeline p = Pipelines.load("hunyuan-video-tiny-demo"); PointerScope scope = new PointerScope()) {
            GenerationSettings s = p.resolve(request().frames(5).option(InitImage.of(init, 0.6)).build());
            FamilyPipeline<?> f = p.unwrap(FamilyPipeline.class);
            HunyuanVideoPipeline hy = p.unwrap(HunyuanVideoPipeline.class);
            Schedule schedule = ImageToImage.truncate(f.schedule(s), s);
            assertEquals(3, schedule.steps(), "int(4 − 2.4) = 1: 3 of 4 steps");
            long[] shape = f.latentSpace().shape(s);
            assertArrayEquals(new long[] {1, 16, 2, 4, 4}, new long[] {shape[0], shape[1], shape[2], shape[3], shape[4]});
            Tensor[] d = draws(shape, 7);
            Tensor pixels = InputImages.pixels(List.of(init), 32, 32, "init image");
            Tensor still = org.bytedeco.pytorch.global.torch.cat(new org.bytedeco.pytorch.TensorVector(
                    pixels.unsqueeze(2), pixels.unsqueeze(2), pixels.unsqueeze(2), pixels.unsqueeze(2), pixels.unsqueeze(2)), 2);
            Tensor expected;
            try (AutoencoderKL.Encoded post = hy.vae().encode(still)) {
                Tensor imageLatents = hy.vae().scaleLatents(post.mean().add(post.std().mul(d[0])));
                double sigma = schedule.sigma(0);
                expected = d[1].mul(new Scalar(sigma)).add(imageLatents.mul(new Scalar(1 - sigma)));
            }
            try (ImageToImage.Start start = ImageToImage.start(f, s, schedule)) {
                assertClose(expected, start.latents(), 1e-5, "the start latents");
                assertFalse(equal(start.imageLatents().select(2, 0), start.imageLatents().select(2, 1)),
                        "the causal VAE gives the first latent frame (one picture) and the next (four) different latents");
            }
        }
    }

    @Test
    void hunyuanVideoAtStrengthOneIsTextToVideoFromTheSameNoise() {
        try (Pipeline p = Pipelines.load("hunyuan-video-tiny-demo"); PointerScope scope = new PointerScope()) {
            GenerationSettings s = p.resolve(request().frames(5).option(InitImage.of(init, 1.0)).build());
            long[] shape = p.unwrap(FamilyPipeline.class).latentSpace().shape(s);
            Tensor noise = draws(shape, 7)[1];
            try (GenerationResult i2v = p.generate(s, null, null);
                 GenerationResult t2v = p.generate(request().frames(5).size(32, 32).initialNoise(noise).build())) {
                assertTrue(equal(i2v.latents(), t2v.latents()), "σ₀ = 1: the start is the noise itself, bit for bit");
            }
        }
    }

    /**
     * Repeated image-to-image and text-to-image requests leave no native objects behind, in the video families and FLUX.
     * Found by this test: the shared start kept its packed latents twice (2 objects a request, every family), the Wan VAE's
     * decode left its three intermediate tensors (3 a COSMOS request) and HunyuanVideo's velocity its host guidance
     * argument (1 a request).
     */
    @Test
    void generationsLeaveNoNativeObjects() {
        for (String model : new String[] {"cosmos-tiny-demo", "hunyuan-video-tiny-demo", "flux-tiny-demo"}) {
            try (Pipeline p = Pipelines.load(model)) {
                GenerationRequest.Builder i2iRequest = request().option(InitImage.of(init, 0.6)), t2iRequest = request().size(32, 32);
                if (model.startsWith("hunyuan")) {
                    i2iRequest.frames(5);
                    t2iRequest.frames(5);
                }
                GenerationSettings i2i = p.resolve(i2iRequest.build()), t2i = p.resolve(t2iRequest.build());
                long fromImage = NativeObjects.perRun(() -> p.generate(i2i, null, null).close());
                long fromNoise = NativeObjects.perRun(() -> p.generate(t2i, null, null).close());
                assertTrue(fromImage <= 0, model + ": image-to-image leaves " + fromImage + " native objects a request");
                assertTrue(fromNoise <= 0, model + ": text-to-image leaves " + fromNoise + " native objects a request");
            }
        }
    }

    @Test
    void videoFamiliesRefuseAMaskAndGiveTheInitImagesSize() {
        java.awt.image.BufferedImage m = new java.awt.image.BufferedImage(32, 32, java.awt.image.BufferedImage.TYPE_BYTE_GRAY);
        Path mask = tmp.resolve("mask.png");
        PngImages.write(mask, m, Map.of());
        for (String model : new String[] {"cosmos-tiny-demo", "hunyuan-video-tiny-demo"}) {
            try (Pipeline p = Pipelines.load(model)) {
                GenerationRequest.Builder b = request().option(InitImage.of(init, 0.6)).option(InpaintMask.of(mask));
                if (model.startsWith("hunyuan")) b.frames(1);
                Exception e = assertThrows(RuntimeException.class, () -> p.resolve(b.build()));
                assertTrue(e.getMessage().contains("inpainting") || e.getMessage().contains("mask"), model + ": " + e.getMessage());
                GenerationRequest.Builder ok = request().option(InitImage.of(init, 0.6));
                if (model.startsWith("hunyuan")) ok.frames(1);
                GenerationSettings s = p.resolve(ok.build());
                assertEquals(32, s.width(), model);
                assertEquals(32, s.height(), model);
            }
        }
    }
}
