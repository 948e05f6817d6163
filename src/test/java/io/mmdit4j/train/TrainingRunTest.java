package io.mmdit4j.train;

import io.mmdit4j.flux.FluxPipeline;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.pipeline.Pipeline;
import io.mmdit4j.pipeline.Pipelines;
import io.mmdit4j.shapes.ShapesWorld;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.bytedeco.pytorch.global.torch.equal;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A 20-step training smoke test on the tiny random FLUX demo's transformer over the shapes world (its random VAE and text
 * encoders make the latents and captions): the held-still loss decreases, checkpoints round-trip bit-exactly, a run
 * stopped part way and resumed continues the uninterrupted run's loss curve exactly, and bad inputs are refused without
 * touching what is there.
 */
class TrainingRunTest {
    @TempDir
    static Path tmp;
    static Pipeline pipe;
    static FluxPipeline flux;
    static ShapesData data;

    static final TrainingRun.Settings SETTINGS = smoke(20, List.of(), 5);

    /** The smoke run's settings: batch 2, lr 2e-3 with 2 warm-up steps, EMA 0.9, a checkpoint every 10 steps. */
    static TrainingRun.Settings smoke(int steps, List<Integer> lrStages, long seed) {
        return new TrainingRun.Settings("smoke", steps, 2, 2e-3, 2, true, lrStages, 0.01, 1.0, 0.9, 0.1, 0.1, FlowMatching.Scheme.LOGIT_NORMAL, seed, 10, 3,
                3.5, false, "");
    }

    @BeforeAll
    static void load() {
        pipe = Pipelines.load("flux-tiny-demo");
        flux = pipe.unwrap(FluxPipeline.class);
        data = new ShapesData(ShapesWorld.demo(3), 8, flux.vae(), flux.textEncoders(), 16, null);
    }

    @AfterAll
    static void close() {
        data.close();
        pipe.close();
    }

    static FluxTrainable fresh() {
        return FluxTrainable.random(flux.transformer().config(), 21, true);
    }

    @Test
    void lossDecreasesAndCheckpointsRoundTripBitExactly() throws IOException {
        Path out = tmp.resolve("run");
        try (FluxTrainable m = fresh(); TrainingRun run = new TrainingRun(m, data, SETTINGS, FluxTrainer.Optim.of(SETTINGS.lr(), SETTINGS.weightDecay()), out, false)) {
            double before = run.evaluate(2, 9);
            assertTrue(run.run(null));
            double after = run.evaluate(2, 9);
            assertTrue(after < before, "held-still loss " + before + " -> " + after);
            assertEquals(20, run.losses().size());
            Path ckpt = out.resolve("checkpoint-000020");
            assertTrue(Files.isRegularFile(ckpt.resolve("transformer/config.json")));
            assertTrue(Files.isRegularFile(out.resolve("loss.png")) && Files.isRegularFile(out.resolve("loss.csv")));
            try (SafetensorsFile f = SafetensorsFile.open(ckpt.resolve("transformer/diffusion_pytorch_model.safetensors"));
                 SafetensorsFile e = SafetensorsFile.open(ckpt.resolve("transformer_ema/diffusion_pytorch_model.safetensors"));
                 PointerScope scope = new PointerScope()) {
                assertEquals(m.trainable().keySet(), f.keys());
                for (Map.Entry<String, Tensor> p : m.trainable().entrySet()) {
                    assertTrue(equal(f.load(p.getKey()), p.getValue().detach()), p.getKey());
                    assertTrue(equal(e.load(p.getKey()), run.emaWeights().get(p.getKey())), "ema " + p.getKey());
                }
            }
            // the checkpoint is a diffusers transformer folder the engine loads
            try (io.mmdit4j.flux.FluxTransformer t = io.mmdit4j.flux.FluxTransformer.load(ckpt, io.mmdit4j.runtime.DType.F32)) {
                assertEquals(m.config().numLayers(), t.config().numLayers());
            }
            assertEquals(List.of("checkpoint-000010", "checkpoint-000020"), names(out));
        }
    }

    @Test
    void resumeAfterAKillContinuesTheSameLossCurve() throws IOException {
        List<Double> straight;
        try (FluxTrainable m = fresh(); TrainingRun run = new TrainingRun(m, data, SETTINGS, FluxTrainer.Optim.of(SETTINGS.lr(), SETTINGS.weightDecay()),
                tmp.resolve("straight"), false)) {
            run.run(null);
            straight = List.copyOf(run.losses());
        }
        Path out = tmp.resolve("killed");
        try (FluxTrainable m = fresh(); TrainingRun run = new TrainingRun(m, data, SETTINGS, FluxTrainer.Optim.of(SETTINGS.lr(), SETTINGS.weightDecay()), out, false)) {
            assertFalse(run.run(s -> s.step() < 13)); // "killed" in step 13: steps 11-13 are lost, checkpoint 10 stays
        }
        assertEquals(List.of("checkpoint-000010"), names(out));
        try (FluxTrainable m = fresh(); TrainingRun run = new TrainingRun(m, data, SETTINGS, FluxTrainer.Optim.of(SETTINGS.lr(), SETTINGS.weightDecay()), out, true)) {
            assertEquals(10, run.step());
            run.run(null);
            assertEquals(straight, run.losses(), "resumed loss curve");
        }
    }

    /** {@code --lr-stages}: one run with a stage ending at step 10 is, bit for bit, a 10-step run continued to 20 with --resume --steps 20. */
    @Test
    void aStagedScheduleIsAFinishedRunContinuedWithMoreSteps() throws IOException {
        Path chained = tmp.resolve("chained"), staged = tmp.resolve("staged");
        TrainingRun.Settings tenSteps = smoke(10, List.of(), 5), stagedSettings = smoke(20, List.of(10), 5);
        try (FluxTrainable m = fresh(); TrainingRun run = new TrainingRun(m, data, tenSteps, FluxTrainer.Optim.of(2e-3, 0.01), chained, false)) {
            assertTrue(run.run(null));
        }
        List<Double> continued;
        try (FluxTrainable m = fresh(); TrainingRun run = new TrainingRun(m, data, SETTINGS, FluxTrainer.Optim.of(2e-3, 0.01), chained, true)) {
            assertEquals(10, run.step());
            assertTrue(run.run(null));
            continued = List.copyOf(run.losses());
        }
        List<Double> oneRun, oneCosine;
        try (FluxTrainable m = fresh(); TrainingRun run = new TrainingRun(m, data, stagedSettings, FluxTrainer.Optim.of(2e-3, 0.01), staged, false)) {
            assertTrue(run.run(null));
            oneRun = List.copyOf(run.losses());
        }
        try (FluxTrainable m = fresh(); TrainingRun run = new TrainingRun(m, data, SETTINGS, FluxTrainer.Optim.of(2e-3, 0.01), tmp.resolve("one-cosine"), false)) {
            assertTrue(run.run(null));
            oneCosine = List.copyOf(run.losses());
        }
        assertEquals(20, oneRun.size());
        assertEquals(continued, oneRun, "loss curve");
        assertNotEquals(oneCosine, oneRun, "the stages change the schedule");
        for (String weights : List.of("transformer", "transformer_ema")) {
            Path file = Path.of("checkpoint-000020", weights, "diffusion_pytorch_model.safetensors");
            assertArrayEquals(Files.readAllBytes(chained.resolve(file)), Files.readAllBytes(staged.resolve(file)), weights);
        }
    }

    @Test
    void badInputsAreRefusedAndNothingIsOverwritten() throws IOException {
        Path out = tmp.resolve("bad");
        try (FluxTrainable m = fresh(); TrainingRun run = new TrainingRun(m, data, SETTINGS, FluxTrainer.Optim.of(SETTINGS.lr(), SETTINGS.weightDecay()), out, false)) {
            run.run(s -> s.step() < 11);
        }
        // a second run into the same folder without --resume
        try (FluxTrainable m = fresh()) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> new TrainingRun(m, data, SETTINGS, FluxTrainer.Optim.of(SETTINGS.lr(), SETTINGS.weightDecay()), out, false));
            assertTrue(e.getMessage().contains("--resume"), e.getMessage());
        }
        // a corrupt checkpoint: truncated weights
        Path weights = out.resolve("checkpoint-000010/transformer/diffusion_pytorch_model.safetensors");
        byte[] full = Files.readAllBytes(weights);
        Files.write(weights, java.util.Arrays.copyOf(full, full.length / 2));
        Map<String, String> before = io.mmdit4j.runtime.Files2.snapshot(out);
        try (FluxTrainable m = fresh()) {
            ModelFormatException e = assertThrows(ModelFormatException.class,
                    () -> new TrainingRun(m, data, SETTINGS, FluxTrainer.Optim.of(SETTINGS.lr(), SETTINGS.weightDecay()), out, true));
            assertTrue(e.getMessage().contains("corrupt checkpoint") && e.getMessage().contains("checkpoint-000010"), e.getMessage());
        }
        assertEquals(before, io.mmdit4j.runtime.Files2.snapshot(out), "nothing changed");
        // corrupt optimizer state
        Files.write(weights, full);
        Files.writeString(out.resolve("checkpoint-000010/optimizer.pt"), "not an archive");
        try (FluxTrainable m = fresh()) {
            ModelFormatException e = assertThrows(ModelFormatException.class,
                    () -> new TrainingRun(m, data, SETTINGS, FluxTrainer.Optim.of(SETTINGS.lr(), SETTINGS.weightDecay()), out, true));
            assertTrue(e.getMessage().contains("optimizer.pt"), e.getMessage());
        }
        // other settings than the checkpoint's
        try (FluxTrainable m = fresh()) {
            TrainingRun.Settings other = smoke(20, List.of(), 6);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> new TrainingRun(m, data, other, FluxTrainer.Optim.of(2e-3, 0.01), out, true));
            assertTrue(e.getMessage().contains("seed"), e.getMessage());
        }
        // another dataset than the checkpoint's: the same world with its objects placed freely
        Map<String, String> beforeData = io.mmdit4j.runtime.Files2.snapshot(out);
        try (FluxTrainable m = fresh();
             ShapesData free = new ShapesData(new ShapesWorld(64, 1, 4, 3, ShapesWorld.Layout.FREE), 8, flux.vae(), flux.textEncoders(), 16, null)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> new TrainingRun(m, free, SETTINGS, FluxTrainer.Optim.of(SETTINGS.lr(), SETTINGS.weightDecay()), out, true));
            assertTrue(e.getMessage().contains("placed in cells") && e.getMessage().contains("placed freely"), e.getMessage());
        }
        assertEquals(beforeData, io.mmdit4j.runtime.Files2.snapshot(out), "nothing changed");
        // an impossible dataset spec fails before any work
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new ShapesWorld(64, 1, 7, 0));
        assertTrue(e.getMessage().contains("impossible"), e.getMessage());
    }

    static List<String> names(Path out) throws IOException {
        try (Stream<Path> s = Files.list(out)) {
            return s.map(p -> p.getFileName().toString()).filter(n -> n.startsWith("checkpoint-")).sorted().toList();
        }
    }
}
