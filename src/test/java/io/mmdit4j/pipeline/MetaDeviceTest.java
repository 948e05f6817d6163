package io.mmdit4j.pipeline;

import io.mmdit4j.GoldenData;
import io.mmdit4j.guidance.CfgRows;
import io.mmdit4j.guidance.Direction;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.hidream.HiDreamDemo;
import io.mmdit4j.hunyuan.TinyHunyuanVideoFolder;
import io.mmdit4j.nn.Attention;
import io.mmdit4j.nn.Ops;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Placement;
import io.mmdit4j.runtime.Transfers;
import io.mmdit4j.sampling.Denoiser;
import io.mmdit4j.sampling.FlowMatchEulerScheduler;
import io.mmdit4j.sampling.FlowMatchSchedulerConfig;
import io.mmdit4j.sampling.Schedule;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.DeviceOptional;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.bytedeco.pytorch.global.torch.empty;
import static org.bytedeco.pytorch.global.torch.ones;
import static org.bytedeco.pytorch.global.torch.zeros;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every family end to end on the {@code meta} device through the generation API (the text encoders on meta, noise drawn
 * by the CPU generators and moved once, every step, the VAE decode), with the placement check on (every op's tensors on meta) and
 * strict sync (a host↔device copy or host read inside a step throws); then the per-step counts of
 * {@link Transfers#lastLoop} are asserted to be 0 for every step, and the shapes-only result is refused by the outputs.
 * This is the discipline for CUDA, which has never run here: what runs on CUDA runs on meta first, with the same
 * placement and the same (absent) host traffic. The counts are of the calls the code makes (see {@link Transfers}).
 */
class MetaDeviceTest {
    private static final LoadOptions META = LoadOptions.builder().device(DeviceSpec.META).build();

    @BeforeEach
    void strict() {
        Placement.setEnabled(true);
        Transfers.setStrict(true);
    }

    @AfterEach
    void relaxed() {
        Placement.setEnabled(false);
        Transfers.setStrict(false);
    }

    /** Generates {@code r} on meta and checks the result: shapes, no host traffic in any step, no file written. */
    private static void generatesOnMeta(Pipeline pipe, GenerationRequest r, long[] outputShape, Path tmp) {
        generatesOnMeta(pipe, r, outputShape, tmp, -1);
    }

    /** As above, for a run of {@code stepsRun} steps (an init image's strength skips the first ones; -1: all of them). */
    private static void generatesOnMeta(Pipeline pipe, GenerationRequest r, long[] outputShape, Path tmp, int stepsRun) {
        Transfers.Counts before = Transfers.snapshot();
        try (GenerationResult result = pipe.generate(r)) {
            assertTrue(result.isMeta(), "a meta run's result is shapes only");
            assertArrayEquals(outputShape, io.mmdit4j.runtime.Tensors.shape(result.isVideo() ? result.frames() : result.images()));
            List<Transfers.Counts> steps = Transfers.lastLoop();
            assertEquals(stepsRun < 0 ? result.settings().steps() : stepsRun, steps.size(), "one count per step run");
            for (int i = 0; i < steps.size(); i++) {
                assertEquals(0, steps.get(i).total(), "step " + i + " asked for host<->device traffic: " + steps.get(i));
            }
            // the set-up moved the per-request inputs (noise, text states, timesteps, ...) to the device: that is counted
            assertTrue(Transfers.snapshot().minus(before).hostToDevice() > 0, "the per-request inputs were moved once");
            Path out = tmp.resolve(result.isVideo() ? "x.mp4" : "x.png");
            InvalidRequestException e = assertThrows(InvalidRequestException.class, () -> result.save(out));
            assertTrue(e.getMessage().contains("meta device"), e.getMessage());
            assertFalse(Files.exists(out), "nothing written");
            assertThrows(IllegalStateException.class, () -> result.image(0));
        }
    }

    @Test
    void fluxWithEmbeddedGuidanceAndModulationGuidance(@TempDir Path tmp) {
        try (Pipeline pipe = Pipelines.load("flux-tiny-demo", META)) {
            GenerationRequest r = GenerationRequest.builder().prompt("a wolf").prompt("a fox").size(64, 48).steps(3).seed(1)
                    .guidanceScale(3.5).guide(Direction.preset("aesthetics")).build();
            generatesOnMeta(pipe, r, new long[] {2, 3, 48, 64}, tmp);
        }
    }

    @Test
    void sd3WithClassifierFreeGuidance(@TempDir Path tmp) {
        try (Pipeline pipe = Pipelines.load(GoldenData.root().resolve("sd3_pipeline/models/sd35-tiny-large"), META)) {
            GenerationRequest r = GenerationRequest.builder().prompt("a cat").size(64, 48).steps(2).seed(3).maxSequenceLength(16)
                    .cfg(4.5, List.of("blurry")).guide(Direction.of("vivid colors", "washed out").w(2.0).layers(LayerSchedule.from(1))
                            .rows(CfgRows.BOTH)).build();
            generatesOnMeta(pipe, r, new long[] {1, 3, 48, 64}, tmp);
        }
    }

    @Test
    void hunyuanVideo(@TempDir Path tmp) throws IOException {
        try (Pipeline pipe = Pipelines.load(TinyHunyuanVideoFolder.write(tmp.resolve("hv")), META)) {
            GenerationRequest r = GenerationRequest.builder().prompt("a cat walks").size(32, 32).frames(5).steps(2).guidanceScale(6.0).seed(1)
                    .maxSequenceLength(8).guide(Direction.of("cinematic", "blurred").w(3.5).layers(LayerSchedule.from(1))).build();
            generatesOnMeta(pipe, r, new long[] {1, 5, 3, 32, 32}, tmp);
        }
    }

    @Test
    void hidreamWithItsStochasticSampler(@TempDir Path tmp) throws IOException {
        try (Pipeline pipe = Pipelines.load(HiDreamDemo.NAME, LoadOptions.builder().registry(HiDreamDemo.registry(tmp.resolve("home")))
                .device(DeviceSpec.META).build())) {
            GenerationRequest r = GenerationRequest.builder().prompt("a lighthouse at dusk").size(64, 64).steps(3).seed(1)
                    .guide(Direction.preset("aesthetics")).build();
            generatesOnMeta(pipe, r, new long[] {1, 3, 64, 64}, tmp);
        }
    }

    @Test
    void cosmosWithCfgAndThePooledAdapter(@TempDir Path tmp) {
        try (Pipeline pipe = Pipelines.load("cosmos-tiny-demo", META)) {
            GenerationRequest r = GenerationRequest.builder().prompt("a red bicycle").size(64, 64).steps(3).seed(2)
                    .cfg(4.0, List.of("")).guide(Direction.preset("aesthetics")).build();
            generatesOnMeta(pipe, r, new long[] {1, 3, 64, 64}, tmp);
        }
    }

    @Test
    void imageToImageAndInpaintingRunOnTheDevice(@TempDir Path tmp) throws IOException {
        Path init = tmp.resolve("init.png"), mask = tmp.resolve("mask.png");
        java.awt.image.BufferedImage img = new java.awt.image.BufferedImage(64, 48, java.awt.image.BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < 48; y++) for (int x = 0; x < 64; x++) img.setRGB(x, y, (x * 4) << 16 | (y * 5) << 8 | 90);
        javax.imageio.ImageIO.write(img, "png", init.toFile());
        java.awt.image.BufferedImage m = new java.awt.image.BufferedImage(64, 48, java.awt.image.BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < 48; y++) for (int x = 32; x < 64; x++) m.setRGB(x, y, 0xFFFFFF); // repaint the right half
        javax.imageio.ImageIO.write(m, "png", mask.toFile());
        try (Pipeline pipe = Pipelines.load("flux-tiny-demo", META)) {
            GenerationRequest r = GenerationRequest.builder().prompt("a wolf").size(64, 48).steps(4).seed(1)
                    .option(InitImage.of(List.of(init), 0.6)).option(InpaintMask.of(List.of(mask))).guide(Direction.preset("aesthetics")).build();
            generatesOnMeta(pipe, r, new long[] {1, 3, 48, 64}, tmp, InitImage.of(List.of(init), 0.6).stepsRun(4));
        }
    }

    /** COSMOS and HunyuanVideo image-to-image: the video VAEs' encoders on the device, then the truncated schedule. */
    @Test
    void videoFamiliesImageToImageRunsOnTheDevice(@TempDir Path tmp) throws IOException {
        Path init = tmp.resolve("init.png");
        java.awt.image.BufferedImage img = new java.awt.image.BufferedImage(32, 32, java.awt.image.BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < 32; y++) for (int x = 0; x < 32; x++) img.setRGB(x, y, (x * 8) << 16 | (y * 8) << 8 | 90);
        javax.imageio.ImageIO.write(img, "png", init.toFile());
        InitImage i2i = InitImage.of(List.of(init), 0.6);
        try (Pipeline pipe = Pipelines.load("cosmos-tiny-demo", META)) {
            GenerationRequest r = GenerationRequest.builder().prompt("a red bicycle").steps(4).seed(2).cfg(4.0, List.of(""))
                    .guide(Direction.preset("aesthetics")).option(i2i).build();
            generatesOnMeta(pipe, r, new long[] {1, 3, 32, 32}, tmp, i2i.stepsRun(4));
        }
        try (Pipeline pipe = Pipelines.load(TinyHunyuanVideoFolder.write(tmp.resolve("hv")), META)) {
            GenerationRequest r = GenerationRequest.builder().prompt("a cat walks").frames(5).steps(4).guidanceScale(6.0).seed(1)
                    .maxSequenceLength(8).option(i2i).build();
            generatesOnMeta(pipe, r, new long[] {1, 5, 3, 32, 32}, tmp, i2i.stepsRun(4));
        }
    }

    @Test
    void rowSteppingOfFluxAndSd3RunsOnTheDevice() {
        for (Object model : List.<Object>of("flux-tiny-demo", GoldenData.root().resolve("sd3_pipeline/models/sd35-tiny-large"))) {
            try (Pipeline pipe = model instanceof Path p ? Pipelines.load(p, META) : Pipelines.load((String) model, META);
                 RowStepper stepper = pipe.rowStepper()) {
                GenerationRequest.Builder b = GenerationRequest.builder().size(32, 32).steps(2).seed(1).maxSequenceLength(16);
                RowStepper.Rows a = stepper.start(pipe.resolve(b.prompt("a wolf").build()));
                GenerationRequest.Builder fox = GenerationRequest.builder().size(32, 32).steps(2).seed(2).maxSequenceLength(16)
                        .prompt("a fox").guide(Direction.preset("aesthetics"));
                if (model.equals("flux-tiny-demo")) fox.option(new TrueCfg(3.0, List.of("blurry"))); // FLUX's true CFG rows beside plain ones
                else fox.cfg(4.0, List.of("blurry"));
                RowStepper.Rows c = stepper.start(pipe.resolve(fox.build()));
                stepper.step(List.of(a, c));
                stepper.step(List.of(a, c));
                for (RowStepper.Rows r : List.of(a, c)) {
                    try (GenerationResult result = stepper.finish(r)) {
                        assertTrue(result.isMeta(), model + ": a meta run's result is shapes only");
                        assertArrayEquals(new long[] {1, 3, 32, 32}, io.mmdit4j.runtime.Tensors.shape(result.images()));
                    }
                }
            }
        }
    }

    @Test
    void theTextEncodersRunOnTheDeviceToo() {
        try (Pipeline pipe = Pipelines.load("flux-tiny-demo", META);
             io.mmdit4j.flux.FluxTextEncoders.Embeddings e = pipe.unwrap(io.mmdit4j.flux.FluxPipeline.class).textEncoders()
                     .encode(List.of("a wolf"), 2, 16)) {
            assertTrue(e.promptEmbeds().is_meta() && e.pooled().is_meta(), "T5 and CLIP ran on meta");
            assertArrayEquals(new long[] {2, 16, io.mmdit4j.runtime.Tensors.shape(e.promptEmbeds())[2]}, io.mmdit4j.runtime.Tensors.shape(e.promptEmbeds()));
        }
        try (Pipeline pipe = Pipelines.load(GoldenData.root().resolve("sd3_pipeline/models/sd35-tiny-large"), META);
             io.mmdit4j.sd3.Sd3TextEncoders.Embeddings e = pipe.unwrap(io.mmdit4j.sd3.Sd3Pipeline.class).textEncoders()
                     .encode(List.of("a cat"), 1, 16)) {
            assertTrue(e.promptEmbeds().is_meta() && e.pooled().is_meta(), "CLIP-L, CLIP-G and T5 ran on meta");
        }
    }

    @Test
    void thePlacementCheckCatchesWhatLibtorchLetsThrough() {
        try (PointerScope scope = new PointerScope()) {
            TensorOptions meta = new TensorOptions(ScalarType.Float).device(new DeviceOptional(new Device("meta")));
            Tensor q = empty(new long[] {1, 2, 4, 8}, meta, new MemoryFormatOptional());
            Tensor cpuMask = ones(new long[] {1, 1, 4, 4}, new TensorOptions(ScalarType.Bool)); // built on the host, never moved
            Attention.sdpa(q, q, q, cpuMask); // on meta the attention is a shape shortcut that never looks at the mask
            try (Placement.Scope check = Placement.check(DeviceSpec.META)) {
                Placement.MisplacedTensorException e = assertThrows(Placement.MisplacedTensorException.class, () -> Attention.sdpa(q, q, q, cpuMask));
                assertTrue(e.getMessage().contains("scaled_dot_product_attention") && e.getMessage().contains("input 3")
                        && e.getMessage().contains("is on cpu"), e.getMessage());
                Tensor cpuScalar = zeros(new long[] {}, new TensorOptions(ScalarType.Float)); // libtorch takes a CPU 0-dim tensor in a meta op
                Tensor y = empty(new long[] {1, 4, 8}, meta, new MemoryFormatOptional());
                assertThrows(Placement.MisplacedTensorException.class, () -> Ops.gatedResidual(y, cpuScalar, y));
            }
            Attention.sdpa(q, q, q, cpuMask); // the check is a scope: off again
        }
    }

    @Test
    void strictSyncStopsAStepThatCopiesFromTheHost() {
        Schedule schedule = new FlowMatchEulerScheduler(FlowMatchSchedulerConfig.fluxSchnell(), FlowMatchEulerScheduler.Spacing.SCHEDULER_DEFAULT)
                .schedule(2, null);
        try (PointerScope scope = new PointerScope()) {
            Tensor noise = zeros(new long[] {1, 4}, new TensorOptions(ScalarType.Float));
            // a velocity that builds an input on the host each step and moves it: what the loop must never do
            Denoiser.Velocity perStepCopy = (x, i) -> io.mmdit4j.runtime.Tensors.keep(Transfers.to(zeros(new long[] {1, 4},
                    new TensorOptions(ScalarType.Float)), DeviceSpec.META));
            Transfers.HostSyncException e = assertThrows(Transfers.HostSyncException.class,
                    () -> Denoiser.run(schedule, noise, perStepCopy, DeviceSpec.META, null, null));
            assertTrue(e.getMessage().contains("step 0") && e.getMessage().contains("cpu -> meta"), e.getMessage());
            Transfers.setStrict(false);
            Denoiser.run(schedule, noise, perStepCopy, DeviceSpec.META, null, null).close(); // counted instead
            assertEquals(List.of(new Transfers.Counts(1, 0, 0), new Transfers.Counts(1, 0, 0)), Transfers.lastLoop());
        }
    }
}
