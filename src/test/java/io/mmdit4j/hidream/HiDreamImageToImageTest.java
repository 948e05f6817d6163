package io.mmdit4j.hidream;

import io.mmdit4j.image.PngImages;
import io.mmdit4j.pipeline.FamilyPipeline;
import io.mmdit4j.pipeline.GenerationRequest;
import io.mmdit4j.pipeline.GenerationResult;
import io.mmdit4j.pipeline.GenerationSettings;
import io.mmdit4j.pipeline.ImageToImage;
import io.mmdit4j.pipeline.InitImage;
import io.mmdit4j.pipeline.InpaintMask;
import io.mmdit4j.pipeline.LoadOptions;
import io.mmdit4j.pipeline.Pipeline;
import io.mmdit4j.pipeline.Pipelines;
import io.mmdit4j.pipeline.SampleSize;
import io.mmdit4j.pipeline.StepNoise;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.sampling.Noise;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.bytedeco.pytorch.global.torch.equal;
import static org.bytedeco.pytorch.global.torch.stack;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Image-to-image, inpainting and latent previews on the HiDream demo (FlowMatchLCM: fresh noise every step): the init
 * image read at the area-preserving resize, the truncated schedule, each image's draws in the order posterior sample,
 * noise, then the sampler's step noise, and the kept region of an inpainting exactly the init latents.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class HiDreamImageToImageTest {
    @TempDir
    static Path home;
    private Pipeline pipe;
    private Path init, mask;

    @BeforeAll
    void load() throws IOException {
        pipe = Pipelines.load(HiDreamDemo.NAME, LoadOptions.builder().registry(HiDreamDemo.registry(home)).build());
        BufferedImage img = new BufferedImage(32, 32, BufferedImage.TYPE_INT_RGB);
        BufferedImage m = new BufferedImage(32, 32, BufferedImage.TYPE_BYTE_GRAY);
        for (int y = 0; y < 32; y++) {
            for (int x = 0; x < 32; x++) {
                img.setRGB(x, y, (x * 8) << 16 | (y * 8) << 8 | ((x + y) * 4));
                m.getRaster().setSample(x, y, 0, x < 16 ? 0 : 255);
            }
        }
        init = home.resolve("init.png");
        mask = home.resolve("mask.png");
        PngImages.write(init, img, Map.of());
        PngImages.write(mask, m, Map.of());
    }

    @AfterAll
    void close() {
        if (pipe != null) pipe.close();
    }

    private static GenerationRequest.Builder request() {
        return GenerationRequest.builder().prompt("a red fox in the snow").steps(4);
    }

    @Test
    void initImageIsReadAtTheResizedSizeAndTheScheduleIsTruncated() {
        // a 32x32 init image gives the request 32x32; the demo's sample size 64 resizes that to 64x64
        GenerationSettings s = pipe.resolve(request().seed(5).option(InitImage.of(init, 0.5)).build());
        assertEquals(32, s.width());
        assertArrayEquals(new int[] {64, 64}, pipe.unwrap(FamilyPipeline.class).latentSpace().imageSize(s));
        List<Tensor> previews = new ArrayList<>();
        try (GenerationResult r = pipe.generate(s, step -> {
            previews.add(step.preview());
            return true;
        }, null)) {
            assertArrayEquals(new long[] {1, 3, 64, 64}, Tensors.shape(r.images()));
            assertEquals(2, r.timings().steps().length, "4 steps at strength 0.5 run 2");
            assertEquals(2, previews.size());
            for (Tensor p : previews) {
                assertNotNull(p, "HiDream previews with the FLUX VAE's factors");
                assertArrayEquals(new long[] {1, 3, 8, 8}, Tensors.shape(p));
                p.close();
            }
        }
    }

    @Test
    void drawsArePosteriorSampleThenNoiseThenTheSamplersStepNoise() {
        // strength 1: x_start = the noise, so the run equals text-to-image started from the seed's second draw with the
        // seed's third and fourth draws as the LCM step noise (the first draw was the init image's posterior sample)
        long[] shape = {1, 16, 8, 8};
        try (Noise.Stream st = Noise.Stream.perRow(shape, new long[] {6}); PointerScope scope = new PointerScope()) {
            st.next(DType.F32).close();                        // eps
            Tensor noise = st.next(DType.F32);                  // the noise
            List<Tensor> steps = new ArrayList<>();
            for (int i = 0; i < 4; i++) steps.add(st.next(DType.F32));
            Tensor stepNoise = stack(new TensorVector(steps.toArray(new Tensor[0])), 0); // [steps, 1, 16, 8, 8]
            try (GenerationResult i2i = pipe.generate(request().seed(6).option(InitImage.of(init, 1.0)).build());
                 GenerationResult t2i = pipe.generate(request().seed(99).size(32, 32).initialNoise(noise).option(new StepNoise(stepNoise)).build())) {
                assertTrue(equal(i2i.latents(), t2i.latents()), "the same numbers in the same order, bit for bit");
            }
        }
    }

    @Test
    void inpaintingKeepsTheUnmaskedHalfAsTheInitLatents() {
        GenerationSettings s = pipe.resolve(request().seed(3).option(InitImage.of(init, 0.75)).option(InpaintMask.of(mask)).build());
        FamilyPipeline<?> f = pipe.unwrap(FamilyPipeline.class);
        try (GenerationResult r = pipe.generate(s, null, null);
             ImageToImage.Start start = ImageToImage.start(f, s, ImageToImage.truncate(f.schedule(s), s));
             PointerScope scope = new PointerScope()) {
            Tensor lat = r.latents(), kept = start.imageLatents();
            assertTrue(equal(lat.narrow(3, 0, 4), kept.narrow(3, 0, 4)), "the left half (mask 0) is the init latents exactly");
            assertFalse(equal(lat.narrow(3, 4, 4), kept.narrow(3, 4, 4)), "the right half is the model's");
        }
    }

    @Test
    void withUniPcTheTruncatedScheduleRunsAndTheRecordRepeatsIt() throws IOException {
        // the demo folder with HiDream-I1 Full's scheduler (UniPC: no step noise)
        Path folder = home.resolve("unipc");
        Path demo = HiDreamDemo.folder(home);
        try (var files = java.nio.file.Files.walk(demo)) {
            for (Path f : (Iterable<Path>) files::iterator) {
                Path to = folder.resolve(demo.relativize(f).toString());
                if (java.nio.file.Files.isDirectory(f)) java.nio.file.Files.createDirectories(to);
                else java.nio.file.Files.copy(f, to);
            }
        }
        java.nio.file.Files.writeString(folder.resolve("scheduler/scheduler_config.json"), "{\"_class_name\": \"FlowUniPCMultistepScheduler\", \"shift\": 3.0}");
        // loaded by path there are no descriptor defaults: the demo's sample size is given (HiDream-I1's is 1024)
        SampleSize demoSize = new SampleSize(64);
        try (Pipeline full = Pipelines.load(folder.toString(), LoadOptions.defaults()); PointerScope scope = new PointerScope()) {
            GenerationSettings s = full.resolve(request().seed(6).option(demoSize).option(InitImage.of(init, 0.5)).build());
            FamilyPipeline<?> f = full.unwrap(FamilyPipeline.class);
            io.mmdit4j.sampling.Schedule truncated = ImageToImage.truncate(f.schedule(s), s);
            assertEquals(2, truncated.steps(), "4 steps at strength 0.5 run 2");
            float sigma0 = f.schedule(s).sigma(0);
            assertTrue(sigma0 < 1f, "UniPC's flow sigmas start below 1 (" + sigma0 + "): strength 1 keeps a trace of the picture");
            try (GenerationResult i2i = full.generate(s, null, null);
                 GenerationResult again = full.generate(GenerationSettings.read(i2i.settings().toJson(), "record").request());
                 ImageToImage.Start start = ImageToImage.start(f, s, truncated)) {
                assertEquals(2, i2i.timings().steps().length);
                for (float v : Tensors.toFloats(i2i.images())) assertTrue(v >= 0f && v <= 1f);
                assertTrue(equal(i2i.latents(), again.latents()), "the record repeats the run bit for bit");
                assertFalse(equal(i2i.latents(), start.latents()), "the model moved the latents");
                System.out.println("HiDream UniPC: first sigma " + sigma0);
            }
        }
    }
}
