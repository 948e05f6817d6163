package io.mmdit4j.cli;

import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.runtime.Files2;
import org.bytedeco.javacpp.PointerScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code mmdit train} with the shapes recipes: a short run writes checkpoints, a loss curve and a pipeline folder; bad input is refused. */
class TrainCommandTest {
    @TempDir
    Path tmp;

    @Test
    void aShortShapesDemoRunWritesALoadablePipeline() throws IOException {
        Path out = tmp.resolve("demo");
        // --base flux-tiny-demo: its (random) VAE instead of the VAE stage (VaeTrainingTest covers that), to keep this fast
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("train", "--recipe", "shapes-demo", "--base", "flux-tiny-demo", "--steps", "4", "--images", "8",
                "--batch", "2", "--save-every", "2", "--warmup", "1", "--log-every", "2", "--out", out.toString());
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.err().contains("samples/s") && r.err().contains("ETA") && r.err().contains("loss"), r.err());
        assertTrue(Files.isRegularFile(out.resolve("model/transformer/diffusion_pytorch_model.safetensors")));
        assertTrue(Files.isRegularFile(out.resolve("loss.png")));
        assertFalse(Files.readString(out.resolve("model/model_index.json")).contains("_mmdit4j_demo"), "a trained folder is not the generated demo");
        CheckGoldenCommandTest.Run g = CheckGoldenCommandTest.run("generate", "--model", out.resolve("model").toString(), "--prompt",
                "two small red circles on a blue background", "--width", "64", "--height", "64", "--steps", "2", "--out", tmp.resolve("x.png").toString());
        assertEquals(0, g.exit(), g.err());

        // a finished run: refused again, and with --resume unless it gets more steps; then continued and exported anew
        Path exported = out.resolve("model/transformer/diffusion_pytorch_model.safetensors");
        Map<String, String> finished = Files2.snapshot(out);
        for (String[] again : new String[][] {{}, {"--resume"}}) {
            List<String> args = new ArrayList<>(List.of("train", "--recipe", "shapes-demo", "--base", "flux-tiny-demo", "--steps", "4",
                    "--images", "8", "--batch", "2", "--save-every", "2", "--warmup", "1", "--out", out.toString()));
            args.addAll(List.of(again));
            r = CheckGoldenCommandTest.run(args.toArray(String[]::new));
            assertNotEquals(0, r.exit());
            assertTrue(r.err().contains("finished at step 4") && r.err().contains("--resume --steps N"), r.err());
            assertEquals(finished, Files2.snapshot(out), "nothing touched");
        }
        byte[] first = Files.readAllBytes(exported);
        r = CheckGoldenCommandTest.run("train", "--recipe", "shapes-demo", "--base", "flux-tiny-demo", "--steps", "6", "--images", "8", "--batch", "2",
                "--save-every", "2", "--warmup", "1", "--log-every", "2", "--out", out.toString(), "--resume");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.err().contains("step 6/6"), r.err());
        assertFalse(Arrays.equals(first, Files.readAllBytes(exported)), "the continued run's weights replace the export");
        assertTrue(Files.isDirectory(out.resolve("checkpoint-000006")));
        try (var names = Files.list(out)) {
            assertEquals(List.of(), names.map(p -> p.getFileName().toString()).filter(n -> n.startsWith(".")).toList(), "no temporary folder left");
        }

        // resuming from a damaged checkpoint: a clear error, nothing touched
        Files2.deleteTree(out.resolve("model"));
        Files2.deleteTree(out.resolve("checkpoint-000006"));
        Path weights = out.resolve("checkpoint-000004/transformer/diffusion_pytorch_model.safetensors");
        Files.write(weights, new byte[] {1, 2, 3});
        Map<String, String> before = Files2.snapshot(out);
        r = CheckGoldenCommandTest.run("train", "--recipe", "shapes-demo", "--base", "flux-tiny-demo", "--steps", "4", "--images", "8", "--batch", "2",
                "--save-every", "2", "--warmup", "1", "--out", out.toString(), "--resume");
        assertNotEquals(0, r.exit());
        assertTrue(r.err().contains("corrupt checkpoint"), r.err());
        assertEquals(before, Files2.snapshot(out));
    }

    @Test
    void initStartsFromATrainedPipelinesTransformerOnItsOwnVae() throws IOException {
        Path a = tmp.resolve("a"), b = tmp.resolve("b");
        // a: two steps at a large rate from random weights (no EMA), so its weights are far from any random start
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("train", "--recipe", "shapes-demo", "--base", "flux-tiny-demo", "--steps", "2", "--images", "4",
                "--batch", "2", "--warmup", "0", "--lr", "1e-2", "--ema", "0", "--out", a.toString());
        assertEquals(0, r.exit(), r.err());
        // b: from a's transformer at a vanishing rate, on another layout: it must end where a ended, with a's VAE
        String[] fineTune = {"train", "--recipe", "shapes-demo", "--init", a.resolve("model").toString(), "--layout", "arranged", "--steps", "2", "--images", "4",
                "--batch", "2", "--warmup", "0", "--lr", "1e-12", "--ema", "0", "--save-every", "1", "--out", b.toString()};
        r = CheckGoldenCommandTest.run(fineTune);
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.err().contains("arranged by count"), r.err());
        Path wa = a.resolve("model/transformer/diffusion_pytorch_model.safetensors"), wb = b.resolve("model/transformer/diffusion_pytorch_model.safetensors");
        try (SafetensorsFile fa = SafetensorsFile.open(wa); SafetensorsFile fb = SafetensorsFile.open(wb); PointerScope scope = new PointerScope()) {
            assertEquals(fa.keys(), fb.keys());
            for (String k : fa.keys()) {
                double d = fa.load(k).sub(fb.load(k)).abs().max().item_double();
                assertTrue(d < 1e-6, k + " moved " + d + " from the --init weights");
            }
        }
        for (String f : List.of("config.json", "diffusion_pytorch_model.safetensors")) {
            assertEquals(-1, Files.mismatch(a.resolve("model/vae").resolve(f), b.resolve("model/vae").resolve(f)), "the init pipeline's VAE: " + f);
        }

        // resuming it needs the same --init; --init goes with neither --base nor --vae, nor with another recipe
        Files2.deleteTree(b.resolve("model"));
        Files2.deleteTree(b.resolve("checkpoint-000002"));
        Map<String, String> before = Files2.snapshot(b);
        List<String> noInit = new ArrayList<>(List.of(fineTune));
        noInit.subList(noInit.indexOf("--init"), noInit.indexOf("--init") + 2).clear();
        noInit.add("--resume");
        r = CheckGoldenCommandTest.run(noInit.toArray(String[]::new));
        assertNotEquals(0, r.exit());
        assertTrue(r.err().contains("was trained with --init " + a.resolve("model")) && r.err().contains("this run has none"), r.err());
        assertEquals(before, Files2.snapshot(b), "nothing touched");
        r = CheckGoldenCommandTest.run("train", "--recipe", "shapes-demo", "--init", a.resolve("model").toString(), "--vae", a.resolve("model/vae").toString(),
                "--out", tmp.resolve("never").toString());
        assertNotEquals(0, r.exit());
        assertTrue(r.err().contains("--base and --vae do not go with it"), r.err());
        r = CheckGoldenCommandTest.run("train", "--recipe", "shapes-lora", "--init", a.resolve("model").toString(), "--out", tmp.resolve("never").toString());
        assertNotEquals(0, r.exit());
        assertTrue(r.err().contains("--recipe shapes-lora does not take it"), r.err());
        assertFalse(Files.exists(tmp.resolve("never")));
    }

    @Test
    void theArrangedFineTuneFollowsTheRunAndResumesOnItsOwn() throws IOException {
        Path out = tmp.resolve("chain");
        String[] chain = {"train", "--recipe", "shapes-demo", "--base", "flux-tiny-demo", "--steps", "2", "--arranged-steps", "2", "--images", "4", "--batch", "2",
                "--warmup", "0", "--save-every", "1", "--log-every", "1", "--out", out.toString()};
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run(chain);
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.err().contains("fine-tuned 2 steps on the arranged layout"), r.err());
        assertTrue(Files.isRegularFile(out.resolve("model/transformer/diffusion_pytorch_model.safetensors")), "the run's own model");
        Path state = out.resolve("arranged/checkpoint-000002/trainer_state.json");
        String json = Files.readString(state);
        assertTrue(json.contains("\"init\" : \"" + out.resolve("model") + "\"") && json.contains("arranged by count"), json);
        assertTrue(Files.readString(out.resolve("checkpoint-000002/trainer_state.json")).contains("placed in cells"));
        for (String f : List.of("config.json", "diffusion_pytorch_model.safetensors")) {
            assertEquals(-1, Files.mismatch(out.resolve("model/vae").resolve(f), out.resolve("arranged/model/vae").resolve(f)), "one VAE: " + f);
        }

        // killed in the last stage: --resume skips the finished run and continues the fine-tune from its checkpoint
        Path last = out.resolve("arranged/model/transformer/diffusion_pytorch_model.safetensors");
        byte[] whole = Files.readAllBytes(last);
        Files2.deleteTree(out.resolve("arranged/model"));
        Files2.deleteTree(out.resolve("arranged/checkpoint-000002"));
        Map<String, String> firstRun = Files2.snapshot(out.resolve("model"));
        List<String> resume = new ArrayList<>(List.of(chain));
        resume.add("--resume");
        r = CheckGoldenCommandTest.run(resume.toArray(String[]::new));
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.err().contains("finished at step 2; on to the arranged fine-tune") && r.err().contains("step 2/2"), r.err());
        assertEquals(firstRun, Files2.snapshot(out.resolve("model")), "the finished run is not trained again");
        assertTrue(Arrays.equals(whole, Files.readAllBytes(last)), "the resumed fine-tune ends where the uninterrupted one did");

        r = CheckGoldenCommandTest.run("train", "--recipe", "shapes-demo", "--init", out.resolve("model").toString(), "--arranged-steps", "5", "--out",
                tmp.resolve("never").toString());
        assertNotEquals(0, r.exit());
        assertTrue(r.err().contains("--arranged-steps follows a run from scratch"), r.err());
        r = CheckGoldenCommandTest.run("train", "--recipe", "shapes-demo", "--layout", "free", "--arranged-steps", "5", "--out", tmp.resolve("never").toString());
        assertNotEquals(0, r.exit());
        assertTrue(r.err().contains("fine-tunes a model trained on cells"), r.err());
        assertFalse(Files.exists(tmp.resolve("never")));
    }

    @Test
    void unknownRecipesAndImpossibleDatasetsAreRefusedBeforeAnyWork() {
        Path out = tmp.resolve("never");
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("train", "--recipe", "shapes-everything", "--out", out.toString());
        assertNotEquals(0, r.exit());
        assertTrue(r.err().contains("unknown recipe") && r.err().contains("shapes-demo"), r.err());
        r = CheckGoldenCommandTest.run("train", "--recipe", "shapes-demo", "--objects", "2-7", "--out", out.toString());
        assertNotEquals(0, r.exit());
        assertTrue(r.err().contains("impossible"), r.err());
        r = CheckGoldenCommandTest.run("train", "--recipe", "shapes-demo", "--objects", "three", "--out", out.toString());
        assertNotEquals(0, r.exit());
        assertTrue(r.err().contains("MIN-MAX"), r.err());
        r = CheckGoldenCommandTest.run("train", "--recipe", "shapes-demo", "--layout", "grid", "--out", out.toString());
        assertNotEquals(0, r.exit());
        assertTrue(r.err().contains("unknown layout 'grid'") && r.err().contains("cells"), r.err());
        r = CheckGoldenCommandTest.run("train", "--recipe", "shapes-demo", "--steps", "1000", "--lr-stages", "500,300", "--out", out.toString());
        assertNotEquals(0, r.exit());
        assertTrue(r.err().contains("stage ends must increase") && r.err().contains("[500, 300]"), r.err());
        r = CheckGoldenCommandTest.run("train", "--recipe", "shapes-demo", "--lr-stages", "24000", "--constant-lr", "--out", out.toString());
        assertNotEquals(0, r.exit());
        assertTrue(r.err().contains("a constant rate has none"), r.err());
        r = CheckGoldenCommandTest.run("train", "--recipe", "shapes-vae", "--vae-downsample", "2", "--out", out.toString());
        assertNotEquals(0, r.exit());
        assertTrue(r.err().contains("4x or 8x"), r.err());
        r = CheckGoldenCommandTest.run("train", "--recipe", "shapes-demo", "--finetune-decoder", tmp.toString(), "--out", out.toString());
        assertNotEquals(0, r.exit());
        assertTrue(r.err().contains("--finetune-decoder is for --recipe shapes-vae"), r.err());
        r = CheckGoldenCommandTest.run("train", "--recipe", "shapes-lora", "--vae-downsample", "4", "--out", out.toString());
        assertNotEquals(0, r.exit());
        assertTrue(r.err().contains("--vae-downsample sets the VAE this run trains"), r.err());
        r = CheckGoldenCommandTest.run("train", "--recipe", "shapes-vae", "--finetune-decoder", tmp.toString(), "--vae-downsample", "4", "--out", out.toString());
        assertNotEquals(0, r.exit());
        assertTrue(r.err().contains("keeps the layout"), r.err());
        r = CheckGoldenCommandTest.run("train", "--recipe", "shapes-vae", "--finetune-decoder", tmp.toString(), "--out", out.toString());
        assertNotEquals(0, r.exit());
        assertTrue(r.err().contains("not a VAE folder"), r.err());
        assertFalse(Files.exists(out));
    }
}
