package io.mmdit4j.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.mmdit4j.flux.FluxConfig;
import io.mmdit4j.flux.FluxFamily;
import io.mmdit4j.flux.FluxPipeline;
import io.mmdit4j.pipeline.LoadOptions;
import io.mmdit4j.pipeline.Pipeline;
import io.mmdit4j.pipeline.Pipelines;
import io.mmdit4j.pipeline.PreparedModel;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.ProcessMemory;
import io.mmdit4j.shapes.ShapesWorld;
import io.mmdit4j.train.FlowMatching;
import io.mmdit4j.train.FluxTrainable;
import io.mmdit4j.train.FluxTrainer;
import io.mmdit4j.train.ShapesData;
import io.mmdit4j.train.TrainingRun;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The shapes recipes of {@code mmdit train}: {@code shapes-demo} (a small FLUX transformer from scratch) and
 * {@code shapes-lora} (a LoRA on the base's transformer), both on the shapes world encoded by the base pipeline's frozen
 * VAE and text encoders. Everything is checked before the first step: the recipe, the dataset spec, the output folder
 * (a run never overwrites another's checkpoints), a checkpoint to resume from.
 */
final class ShapesTraining {
    private final TrainCommand c;

    ShapesTraining(TrainCommand c) {
        this.c = c;
    }

    /** The demo transformer: 2 double + 4 single blocks at width 128 (4 heads of 32), no guidance embedder (schnell-style). */
    static FluxConfig demoConfig(int latentChannels, int jointDim, int pooledDim) {
        return new FluxConfig(4 * latentChannels, 4 * latentChannels, 2, 4, 32, 4, jointDim, pooledDim, false, new int[] {8, 12, 12}, 4 * 128);
    }

    /** The shapes-demo recipe's transformer steps and learning-rate stages: the committed models/flux-shapes-demo's run. */
    static final int DEMO_STEPS = 96000;
    static final List<Integer> DEMO_LR_STAGES = List.of(24000, 50000);
    /** A run from {@code --init} (the recipe's arranged fine-tune): its default steps and learning rate. */
    static final int FINETUNE_STEPS = 10000;
    static final double FINETUNE_LR = 2e-4;

    int run() throws IOException {
        if (c.finetuneDecoder != null && !c.recipe.equals("shapes-vae")) {
            throw new IllegalArgumentException("--finetune-decoder is for --recipe shapes-vae (it fine-tunes a VAE folder's decoder)");
        }
        if (c.recipe.equals("shapes-vae")) return trainVae();
        boolean demo = c.recipe.equals("shapes-demo");
        int arranged = arrangedSteps(demo);
        if (arranged == 0) return transformer(demo);
        // The recipe's last stage (README "Training"): the model it trained on cells, fine-tuned on the arranged layout,
        // where a picture's arrangement shows its count (trained on cells alone, the demo got the count wrong half the time).
        Path out = c.out;
        int firstSteps = c.steps != null ? c.steps : DEMO_STEPS;
        Path newest = TrainingRun.newest(out);
        if (c.resume && Files.isDirectory(out.resolve("model")) && newest != null && TrainingRun.stepOf(newest) >= firstSteps) {
            System.err.println("train: " + out.resolve("model") + " finished at step " + TrainingRun.stepOf(newest) + "; on to the arranged fine-tune");
        } else {
            transformer(true);
        }
        System.err.printf(Locale.ROOT, "train: last stage: %s fine-tuned %d steps on the arranged layout into %s%n", out.resolve("model"), arranged, out.resolve("arranged"));
        c.init = out.resolve("model").toString();
        c.base = null;
        c.vae = null;
        c.vaeDownsample = null;
        c.out = out.resolve("arranged");
        c.layout = ShapesWorld.Layout.ARRANGED.name().toLowerCase(Locale.ROOT);
        c.steps = arranged;
        c.lr = null;
        c.lrStages = null;
        c.resume = c.resume && TrainingRun.newest(c.out) != null;
        c.arrangedSteps = 0;
        return transformer(true);
    }

    /**
     * {@code --arranged-steps}: the steps of the recipe's arranged fine-tune after the run; by default {@link #FINETUNE_STEPS}
     * when the run is the recipe's own (no --steps, --init, --layout, --lr-stages or --constant-lr), else none.
     */
    private int arrangedSteps(boolean demo) {
        if (c.arrangedSteps == null) {
            return demo && c.steps == null && c.init == null && c.layout.equalsIgnoreCase("cells") && c.lrStages == null && !c.constantLr ? FINETUNE_STEPS : 0;
        }
        if (c.arrangedSteps < 0) throw new IllegalArgumentException("--arranged-steps " + c.arrangedSteps + ": must be >= 0");
        if (c.arrangedSteps > 0 && !demo) throw new IllegalArgumentException("--arranged-steps is for --recipe shapes-demo");
        if (c.arrangedSteps > 0 && c.init != null) {
            throw new IllegalArgumentException("--arranged-steps follows a run from scratch; with --init the run itself is a fine-tune (--layout arranged)");
        }
        if (c.arrangedSteps > 0 && !c.layout.equalsIgnoreCase("cells")) {
            throw new IllegalArgumentException("--arranged-steps fine-tunes a model trained on cells; this run uses --layout " + c.layout);
        }
        return c.arrangedSteps;
    }

    /** The shapes-demo or shapes-lora transformer run (one stage). */
    private int transformer(boolean demo) throws IOException {
        if (c.vaeDownsample != null && !(demo && c.vae == null)) {
            throw new IllegalArgumentException("--vae-downsample sets the VAE this run trains: --recipe shapes-vae, or shapes-demo without --vae");
        }
        if (c.init != null && !demo) throw new IllegalArgumentException("--init starts a shapes-demo run from a trained transformer; --recipe " + c.recipe + " does not take it");
        if (c.init != null && (c.base != null || c.vae != null)) {
            throw new IllegalArgumentException("--init " + c.init + ": the run keeps that pipeline's VAE and text encoders, so --base and --vae do not go with it");
        }
        if (c.data != null) throw new IllegalArgumentException("--data is for --recipe pooled-adapter; the shapes recipes make their data (--images, --objects, --image-size)");
        int[] objects = parseRange(c.objects);
        ShapesWorld world = new ShapesWorld(c.imageSize, objects[0], objects[1], c.seed, ShapesWorld.Layout.parse(c.layout));
        world.checkPlaceable();
        // The demo's defaults are the committed models/flux-shapes-demo's run (README "Training"); shapes-lora fine-tunes briefly.
        int steps = c.steps != null ? c.steps : c.init != null ? FINETUNE_STEPS : demo ? DEMO_STEPS : 500;
        // the committed demo was trained for 24,000 steps, then continued to 50,000 and to 96,000 (--resume --steps): its
        // default schedule has those stages, so that the one command reproduces it
        List<Integer> lrStages = c.lrStages != null ? c.lrStages : demo && c.steps == null && !c.constantLr && c.init == null ? DEMO_LR_STAGES : List.of();
        int batch = c.batch != null ? c.batch : demo ? 32 : 8;
        double lr = c.lr != null ? c.lr : c.init != null ? FINETUNE_LR : demo ? 5e-4 : 1e-3;
        double ema = c.ema != null ? c.ema : demo ? 0.999 : 0;
        // dropping the T5 tokens more often than the pooled vector makes the model read attributes from the pooled vector
        // too, which is what modulation guidance steers
        double dropT5 = c.dropT5 != null ? c.dropT5 : demo ? 0.2 : 0.1;
        int images = c.images != null ? c.images : demo ? 32768 : 2048;
        TrainingRun.Settings settings = new TrainingRun.Settings(c.recipe, steps, batch, lr, c.warmup, !c.constantLr, lrStages, c.weightDecay, c.maxGradNorm, ema,
                dropT5, c.dropPooled, FlowMatching.Scheme.parse(c.timesteps), c.seed, c.saveEvery != null ? c.saveEvery : 250, c.keep, 3.5, c.bf16,
                c.init);
        int maxLen = c.maxSequenceLength != null ? c.maxSequenceLength : 16; // the longest caption is 13 T5 tokens
        if (images < 1) throw new IllegalArgumentException("--images must be >= 1");
        Path from = TrainingRun.newest(c.out);
        Path export = demo ? c.out.resolve("model") : c.out.resolve("pytorch_lora_weights.safetensors");
        if (Files.exists(export)) {
            // a finished run continues only with more steps; its export is then replaced at the end
            int last = from == null ? 0 : TrainingRun.stepOf(from);
            if (!c.resume || steps <= last) {
                throw new IllegalArgumentException(export + " exists: this run finished at step " + last + " (continue it with --resume --steps N, N more than "
                        + last + ", or choose another --out; nothing was overwritten)");
            }
        }
        if (!c.resume && from != null) {
            throw new IllegalArgumentException(c.out + " holds " + from.getFileName() + ": pass --resume to continue it, or choose another --out (nothing was overwritten)");
        }
        if (c.resume && from == null) throw new IllegalArgumentException(c.out + ": --resume, but no checkpoint-NNNNNN there");
        if (c.resume && demo) TrainingRun.requireSameInit(from, c.init);
        String baseName = c.base != null ? c.base : "flux-tiny-demo";
        if (c.init != null) baseName = c.init; // a fine-tune keeps the latents and text encoders its transformer was trained on
        else if (demo && c.base == null) baseName = demoBase().toString(); // the demo's own VAE with the tiny demo's text encoders
        PreparedModel prepared = Pipelines.prepare(baseName, LoadOptions.builder().dtype(DType.F32).loras(List.of()).build());
        if (!(prepared.family() instanceof FluxFamily)) {
            throw new IllegalArgumentException("--base " + baseName + ": a " + prepared.family().name() + " model; the shapes recipes train FLUX");
        }
        if (baseName.equals("flux-tiny-demo")) {
            System.err.println("train: warning: the base flux-tiny-demo has random VAE and text-encoder weights: the model learns their latents, and its "
                    + "pictures will not show shapes until a trained VAE is used (--base)");
        }
        try (Pipeline pipe = prepared.load()) {
            FluxPipeline flux = pipe.unwrap(FluxPipeline.class);
            long t0 = System.nanoTime();
            try (ShapesData data = new ShapesData(world, images, flux.vae(), flux.textEncoders(), maxLen,
                    n -> { if (n % 1024 == 0 || n == images) System.err.printf(Locale.ROOT, "train: encoded %d/%d pictures%n", n, images); });
                 FluxTrainable model = c.init != null ? FluxTrainable.load(prepared.path(), true)
                         : demo ? FluxTrainable.random(demoConfig((int) data.latents(0).size(0), flux.textEncoders().jointDim(), flux.textEncoders().pooledDim()), c.seed, true)
                         : lora(FluxTrainable.load(prepared.path(), false))) {
                System.err.printf(Locale.ROOT, "train: %s, %s, %s; encoding took %.1f s%n", c.recipe, data.describe(),
                        model.isLora() ? model.trainable().size() / 2 + " LoRA modules of rank " + c.rank : model.config() + "", (System.nanoTime() - t0) / 1e9);
                try (TrainingRun run = new TrainingRun(model, data, settings, FluxTrainer.Optim.of(lr, c.weightDecay), c.out, c.resume)) {
                    int first = run.step();
                    double[] avg = {0};
                    long t1 = System.nanoTime();
                    run.run(s -> {
                        avg[0] = s.step() == first + 1 ? s.loss() : 0.95 * avg[0] + 0.05 * s.loss();
                        if (s.step() == first + 1 || s.step() % c.logEvery == 0 || s.step() == s.steps()) {
                            System.err.printf(Locale.ROOT, "step %d/%d  loss %.4f (avg %.4f)  lr %.2e  |  %.2f it/s  %.1f samples/s  |  ETA %s  |  RSS %d MB%n",
                                    s.step(), s.steps(), s.loss(), avg[0], s.lr(), 1 / s.secondsPerStep(), s.batch() / s.secondsPerStep(),
                                    duration(s.etaSeconds()), ProcessMemory.rssMb());
                        }
                        return true;
                    });
                    double secs = (System.nanoTime() - t1) / 1e9;
                    int done = run.step() - first;
                    System.err.printf(Locale.ROOT, "train: %d steps in %s (%.3f s/step, %.1f samples/s), peak RSS %d MB; loss curve %s%n", done, duration(secs),
                            done == 0 ? 0 : secs / done, done == 0 ? 0 : done * batch / secs, ProcessMemory.peakRssMb(), c.out.resolve("loss.png"));
                    if (demo) exportPipeline(prepared.path(), model, run.emaWeights(), export);
                    else model.save(c.out.resolve(".lora.tmp"), run.emaWeights(), Map.of("generated_by", "mmdit4j train --recipe shapes-lora"));
                    if (!demo) {
                        Files.move(c.out.resolve(".lora.tmp/pytorch_lora_weights.safetensors"), export, StandardCopyOption.ATOMIC_MOVE);
                        Files.delete(c.out.resolve(".lora.tmp"));
                    }
                    System.out.println(export);
                }
            }
        }
        return 0;
    }

    /**
     * The shapes demo's base pipeline, {@code out/base}: flux-tiny-demo's tokenizers, text encoders (frozen, random; the T5
     * with word-order heads, {@link io.mmdit4j.train.PositionalT5}) and scheduler with the trained VAE ({@code --vae}, else {@code out/vae}, trained first when missing).
     */
    private Path demoBase() throws IOException {
        Path vaeDir = c.vae != null ? c.vae : c.out.resolve("vae");
        if (!Files.isDirectory(vaeDir)) {
            if (c.vae != null) throw new IllegalArgumentException("--vae " + c.vae + ": not a folder");
            System.err.println("train: stage 1/2: the VAE (" + c.vaeSteps + " steps) into " + vaeDir);
            Integer steps = c.steps, batch = c.batch;
            Double lr = c.lr;
            c.steps = c.vaeSteps;
            c.batch = null;
            c.lr = null;
            try {
                trainVae();
            } finally {
                c.steps = steps;
                c.batch = batch;
                c.lr = lr;
            }
            System.err.println("train: stage 2/2: the transformer");
        }
        Path base = c.out.resolve("base");
        if (Files.isDirectory(base)) return base;
        Path tiny = Pipelines.prepare("flux-tiny-demo", LoadOptions.builder().dtype(DType.F32).loras(List.of()).build()).path();
        Path tmp = c.out.resolve(".base.tmp");
        io.mmdit4j.runtime.Files2.deleteTree(tmp);
        Files.createDirectories(tmp);
        try (Stream<Path> s = Files.list(tiny)) {
            for (Path p : (Iterable<Path>) s::iterator) {
                String name = p.getFileName().toString();
                if (!name.equals("vae") && !name.startsWith(".")) io.mmdit4j.runtime.Files2.copyTree(p, tmp.resolve(name));
            }
        }
        io.mmdit4j.runtime.Files2.copyTree(vaeDir, tmp.resolve("vae"));
        io.mmdit4j.train.PositionalT5.apply(tmp.resolve("text_encoder_2")); // the frozen T5 reads word order
        dropDemoMarkers(tmp.resolve("model_index.json"));
        Files.move(tmp, base, StandardCopyOption.ATOMIC_MOVE);
        return base;
    }

    /** {@code shapes-vae}: the demo's VAE on fresh shapes-world pictures, written to {@code out/vae}. */
    private int trainVae() throws IOException {
        int[] objects = parseRange(c.objects);
        ShapesWorld world = new ShapesWorld(c.imageSize, objects[0], objects[1], c.seed, ShapesWorld.Layout.parse(c.layout));
        world.checkPlaceable();
        int steps = c.steps != null ? c.steps : 2000, batch = c.batch != null ? c.batch : 16;
        boolean fineTune = c.finetuneDecoder != null;
        if (fineTune && c.vaeDownsample != null) {
            throw new IllegalArgumentException("--vae-downsample: the decoder fine-tune keeps the layout of the VAE in --finetune-decoder");
        }
        double lr = c.lr != null ? c.lr : fineTune ? 3e-4 : 1e-3;
        Path dir = c.out.resolve("vae");
        long t0 = System.nanoTime();
        java.util.function.Consumer<io.mmdit4j.train.VaeTraining.Step> report = s -> {
            if (s.step() == 1 || s.step() % c.logEvery == 0 || s.step() == s.steps()) {
                double secs = (System.nanoTime() - t0) / 1e9;
                System.err.printf(Locale.ROOT, "vae step %d/%d  loss %.5f  mse %.5f  |  %.1f samples/s  |  ETA %s  |  RSS %d MB%n", s.step(), s.steps(), s.loss(), s.mse(),
                        s.step() * batch / secs, duration(secs / s.step() * (s.steps() - s.step())), ProcessMemory.rssMb());
            }
        };
        double mse = fineTune
                ? io.mmdit4j.train.VaeTraining.fineTuneDecoder(c.finetuneDecoder, world, steps, batch, lr, c.seed, dir, report)
                : io.mmdit4j.train.VaeTraining.train(io.mmdit4j.train.VaeTraining.demoConfig(c.vaeDownsample != null ? c.vaeDownsample : 8), world, steps, batch, lr, 1e-5, c.seed, dir, report);
        System.err.printf(Locale.ROOT, "train: VAE held-out reconstruction MSE %.5f (pictures in [-1, 1]) after %s%n", mse, duration((System.nanoTime() - t0) / 1e9));
        System.out.println(dir);
        return 0;
    }

    private FluxTrainable lora(FluxTrainable m) {
        try {
            m.addLora(c.loraTargets, c.rank, c.loraAlpha != null ? c.loraAlpha : c.rank, null, c.seed);
            return m;
        } catch (RuntimeException e) {
            m.close();
            throw e;
        }
    }

    /** The base pipeline folder with the trained transformer (the EMA's when there is one), written beside and moved into place. */
    static void exportPipeline(Path base, FluxTrainable model, Map<String, org.bytedeco.pytorch.Tensor> ema, Path to) throws IOException {
        Path tmp = to.resolveSibling("." + to.getFileName() + ".tmp");
        io.mmdit4j.runtime.Files2.deleteTree(tmp);
        Files.createDirectories(tmp);
        try (Stream<Path> s = Files.list(base)) {
            for (Path p : (Iterable<Path>) s::iterator) {
                String name = p.getFileName().toString();
                if (name.equals("transformer") || name.startsWith(".")) continue;
                io.mmdit4j.runtime.Files2.copyTree(p, tmp.resolve(name));
            }
        }
        Path index = tmp.resolve("model_index.json");
        if (Files.isRegularFile(index)) dropDemoMarkers(index);
        model.save(tmp.resolve("transformer"), ema, Map.of("generated_by", "mmdit4j train"));
        Path old = to.resolveSibling("." + to.getFileName() + ".old");
        if (Files.exists(to)) Files.move(to, old, StandardCopyOption.ATOMIC_MOVE); // a continued run's earlier export
        Files.move(tmp, to, StandardCopyOption.ATOMIC_MOVE);
        io.mmdit4j.runtime.Files2.deleteTree(old);
    }

    /** A trained folder is no longer the generated demo: the registry must not take it for a stale one and rewrite it. */
    private static void dropDemoMarkers(Path modelIndex) throws IOException {
        ObjectMapper json = new ObjectMapper();
        ObjectNode j = (ObjectNode) json.readTree(modelIndex.toFile());
        j.remove(List.of("_mmdit4j_demo", "_mmdit4j_demo_format"));
        Files.writeString(modelIndex, json.writerWithDefaultPrettyPrinter().writeValueAsString(j));
    }

    static int[] parseRange(String s) {
        String[] p = s.split("-", -1);
        try {
            if (p.length == 1) return new int[] {Integer.parseInt(p[0].strip()), Integer.parseInt(p[0].strip())};
            if (p.length == 2) return new int[] {Integer.parseInt(p[0].strip()), Integer.parseInt(p[1].strip())};
        } catch (NumberFormatException ignored) {
            // falls through to the error
        }
        throw new IllegalArgumentException("--objects " + s + ": expected MIN-MAX, e.g. 1-4");
    }

    static String duration(double seconds) {
        long s = Math.round(seconds);
        return s >= 3600 ? String.format(Locale.ROOT, "%dh%02dm", s / 3600, s % 3600 / 60)
                : String.format(Locale.ROOT, "%dm%02ds", s / 60, s % 60);
    }
}
