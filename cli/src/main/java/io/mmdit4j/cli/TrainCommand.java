package io.mmdit4j.cli;

import io.mmdit4j.cosmos.CosmosFamily;
import io.mmdit4j.cosmos.CosmosPipeline;
import io.mmdit4j.cosmos.PooledAdapterTraining;
import io.mmdit4j.models.ModelRegistry;
import io.mmdit4j.pipeline.LoadOptions;
import io.mmdit4j.pipeline.Pipeline;
import io.mmdit4j.pipeline.Pipelines;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.ProcessMemory;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * {@code mmdit train --recipe pooled-adapter}: the modulation-guidance paper's fine-tuning of COSMOS's pooled-CLIP adapter
 * ({@link PooledAdapterTraining}) on (latents, prompt) pairs, e.g. the model's own samples written by
 * {@code generate --save-latents}. The base model is frozen; checkpoints are resumable and load in {@code generate --adapter}.
 */
@Command(name = "train", mixinStandardHelpOptions = true,
        description = {"Train in Java. Recipes:",
                "  shapes-demo     a FLUX transformer from scratch (or from --init) on the shapes world (the --base pipeline's VAE and text encoders, frozen)",
                "  shapes-vae      a 16-channel AutoencoderKL (8x down-sampling, --vae-downsample) on shapes-world pictures (out/vae)",
                "  shapes-lora     a LoRA (--lora-targets, --rank) on the --base FLUX transformer, on the shapes world, base frozen",
                "  pooled-adapter  COSMOS's pooled-CLIP adapter on (latents, prompt) pairs (--data); the base model stays frozen"})
final class TrainCommand implements Callable<Integer> {
    @Option(names = "--recipe", required = true, description = "shapes-demo, shapes-lora or pooled-adapter (see above)")
    String recipe;
    @Option(names = "--base", description = "the base model: shapes-demo / shapes-lora a FLUX diffusers folder or model name (default flux-tiny-demo); "
            + "pooled-adapter a COSMOS model (required)")
    String base;
    @Option(names = "--init", description = "shapes-demo: start from this trained FLUX pipeline's transformer (a diffusers folder or model name, e.g. "
            + "flux-shapes-demo) instead of random weights, on its own VAE and text encoders (not with --base or --vae); "
            + "then --steps defaults to 10000 and --lr to 2e-4")
    String init;
    @Option(names = "--arranged-steps", description = "shapes-demo: after the run, fine-tune its model this many steps on the arranged layout (as --init "
            + "out/model --layout arranged, into out/arranged) (default: 10000 for the recipe's own run: no --steps, --init, --layout, --lr-stages or --constant-lr; else 0)")
    Integer arrangedSteps;
    @Option(names = "--data", description = "pooled-adapter: folder of *.safetensors with 'latents' and a prompt (metadata or .txt): generate --save-latents")
    Path data;
    @Option(names = "--out", description = "checkpoints, loss.csv, loss.png and the trainer state (default: outputs/<recipe>)")
    Path out;
    @Option(names = "--steps", description = "optimizer steps in all (default: the recipe's: shapes-demo 96000 (with --init 10000), shapes-vae 2000, shapes-lora 500, pooled-adapter 4000)")
    Integer steps;
    @Option(names = "--batch", description = "samples per step (default: shapes-demo 32, shapes-lora 8, pooled-adapter 1)")
    Integer batch;
    @Option(names = "--lr", description = "AdamW learning rate (default: shapes-demo 5e-4, shapes-lora 1e-3, pooled-adapter 1e-4)")
    Double lr;
    @Option(names = "--weight-decay", defaultValue = "0.01", description = "AdamW weight decay (default: ${DEFAULT-VALUE})")
    double weightDecay;
    @Option(names = "--seed", defaultValue = "0", description = "initialisation, data order and noise (default: ${DEFAULT-VALUE})")
    long seed;
    @Option(names = "--save-every", description = "checkpoint interval in steps (default: shapes 250, pooled-adapter 500)")
    Integer saveEvery;
    @Option(names = "--max-sequence-length", description = "T5 tokens (default: shapes 16, pooled-adapter 512)")
    Integer maxSequenceLength;
    @Option(names = "--warmup", defaultValue = "100", description = "shapes: linear warm-up steps before the cosine decay (default: ${DEFAULT-VALUE})")
    int warmup;
    @Option(names = "--lr-stages", split = ",", description = "shapes: cosine stages ending at these steps, as a run finished at each and continued with "
            + "--resume --steps follows (default: shapes-demo without --steps 24000,50000, else none: one cosine)")
    List<Integer> lrStages;
    @Option(names = "--constant-lr", description = "shapes: no cosine decay after the warm-up")
    boolean constantLr;
    @Option(names = "--max-grad-norm", defaultValue = "1.0", description = "shapes: clip the global gradient norm (0: off; default: ${DEFAULT-VALUE})")
    double maxGradNorm;
    @Option(names = "--ema", description = "shapes: EMA decay of the weights (0: off; default: shapes-demo 0.999, shapes-lora 0)")
    Double ema;
    @Option(names = "--caption-dropout-t5", description = "shapes: probability of dropping the T5 tokens (default: shapes-demo 0.2, shapes-lora 0.1)")
    Double dropT5;
    @Option(names = "--caption-dropout-pooled", defaultValue = "0.1", description = "shapes: probability of dropping the pooled CLIP vector (default: ${DEFAULT-VALUE})")
    double dropPooled;
    @Option(names = "--timesteps", defaultValue = "logit_normal", description = "shapes: timestep density and weighting: logit_normal, none, mode, cosmap, sigma_sqrt (default: ${DEFAULT-VALUE})")
    String timesteps;
    @Option(names = "--images", description = "shapes: pictures in the dataset (default: shapes-demo 32768, shapes-lora 2048)")
    Integer images;
    @Option(names = "--image-size", defaultValue = "64", description = "shapes: picture size in pixels (default: ${DEFAULT-VALUE})")
    int imageSize;
    @Option(names = "--objects", defaultValue = "1-4", description = "shapes: objects per picture, MIN-MAX (at most 4; default: ${DEFAULT-VALUE})")
    String objects;
    @Option(names = "--layout", defaultValue = "cells", description = "shapes: where objects sit: cells (one per quadrant, jittered), arranged (one arrangement per count: centred, side by side, "
            + "a triangle, the quadrants; jittered) or free (anywhere, apart) (default: ${DEFAULT-VALUE})")
    String layout;
    @Option(names = "--rank", defaultValue = "8", description = "shapes-lora: LoRA rank (default: ${DEFAULT-VALUE})")
    int rank;
    @Option(names = "--lora-alpha", description = "shapes-lora: LoRA alpha (default: the rank)")
    Double loraAlpha;
    @Option(names = "--lora-targets", split = ",", defaultValue = "to_q,to_k,to_v,to_out.0", description = "shapes-lora: module name suffixes (default: ${DEFAULT-VALUE})")
    List<String> loraTargets;
    @Option(names = "--vae", description = "shapes-demo: a trained VAE folder (default: out/vae, trained first by the shapes-vae recipe when missing)")
    Path vae;
    @Option(names = "--vae-downsample", description = "shapes-vae / shapes-demo: the trained VAE's down-sampling, 4 or 8 (default: 8)")
    Integer vaeDownsample;
    @Option(names = "--finetune-decoder", description = "shapes-vae: fine-tune this VAE folder's decoder (encoder frozen, so its latents stay the same) instead of training a new VAE")
    Path finetuneDecoder;
    @Option(names = "--vae-steps", defaultValue = "2000", description = "shapes-demo: steps of the VAE stage when it runs (default: ${DEFAULT-VALUE})")
    int vaeSteps;
    @Option(names = "--bf16", description = "shapes: bf16 autocast for the forward and backward (weights, optimizer and loss stay fp32)")
    boolean bf16;
    @Option(names = "--keep", defaultValue = "2", description = "shapes: checkpoints kept (default: ${DEFAULT-VALUE})")
    int keep;
    @Option(names = "--log-every", defaultValue = "10", description = "shapes: a progress line every N steps (default: ${DEFAULT-VALUE})")
    int logEvery;
    @Option(names = "--resume", description = "continue from the newest checkpoint in --out")
    boolean resume;
    @Option(names = "--dtype", description = "fp32 or bf16 for the frozen model (default: fp32; the adapter trains in fp32)")
    String dtype;
    @Option(names = "--text-encoders", description = "the folder of the CLIP-L (default: the model's text_encoder_2/, else $MMDIT_MODELS/FLUX.1-schnell)")
    Path textEncoders;
    @Mixin
    ThreadsOption threads = new ThreadsOption();

    static final List<String> RECIPES = List.of("shapes-demo", "shapes-vae", "shapes-lora", "pooled-adapter");

    @Override
    public Integer call() throws Exception {
        threads.apply();
        if (!RECIPES.contains(recipe)) throw new IllegalArgumentException("--recipe " + recipe + ": unknown recipe; the recipes are " + String.join(", ", RECIPES));
        if (out == null) out = Path.of("outputs", recipe);
        if (!recipe.equals("pooled-adapter")) {
            return new ShapesTraining(this).run();
        }
        if (base == null) throw new IllegalArgumentException("--recipe pooled-adapter needs --base (a COSMOS model)");
        if (data == null) throw new IllegalArgumentException("--recipe pooled-adapter needs --data (a folder of latents and prompts)");
        int steps = this.steps != null ? this.steps : 4000, batch = this.batch != null ? this.batch : 1;
        int saveEvery = this.saveEvery != null ? this.saveEvery : 500, maxSequenceLength = this.maxSequenceLength != null ? this.maxSequenceLength : 512;
        double lr = this.lr != null ? this.lr : 1e-4;
        PooledAdapterTraining.Settings settings = new PooledAdapterTraining.Settings(steps, batch, lr, weightDecay, seed, saveEvery, maxSequenceLength);
        List<PooledAdapterTraining.Sample> samples = PooledAdapterTraining.readSamples(data, w -> System.err.println("mmdit: warning: " + w));
        LoadOptions.Builder o = LoadOptions.builder().dtype(dtype != null ? DType.parse(dtype) : DType.F32).textEncoders(textEncoders).loras(List.of());
        var prepared = Pipelines.prepare(base, o.build());
        if (!(prepared.family() instanceof CosmosFamily)) {
            throw new IllegalArgumentException("--base " + base + ": a " + prepared.family().name() + " model; the pooled-adapter recipe trains COSMOS");
        }
        long t0 = System.nanoTime();
        try (Pipeline pipe = prepared.load()) {
            CosmosPipeline cosmos = pipe.unwrap(CosmosPipeline.class);
            System.err.printf(Locale.ROOT, "train: %d samples from %s, base %s (%d blocks), %s%n", samples.size(), data, prepared.path(),
                    cosmos.numGuidedBlocks(), resume ? "resuming from " + out : "adapter initialised (zero gains)");
            try (PooledAdapterTraining t = new PooledAdapterTraining(cosmos.transformer(), cosmos.textEncoders(), samples, settings, out, resume)) {
                int first = t.step();
                long t1 = System.nanoTime();
                List<Double> losses;
                try (Progress bar = Progress.of("train", " steps")) {
                    boolean terminal = System.console() != null; // a bar in place; a log keeps a line every 10 steps
                    losses = t.run((s, loss) -> {
                        if (terminal) bar.update(s, steps, String.format(Locale.ROOT, "loss %.6f", loss));
                        else if (s == first + 1 || s % 10 == 0 || s == steps) Verbosity.note("step %d/%d loss %.6f", s, steps, loss);
                    });
                }
                double secs = (System.nanoTime() - t1) / 1e9;
                System.err.printf(Locale.ROOT, "train: %d steps in %.1f s (%.3f s/step), peak RSS %d MB%n", losses.size(), secs,
                        losses.isEmpty() ? 0 : secs / losses.size(), ProcessMemory.peakRssMb());
                System.out.println(out.resolve("checkpoint_" + t.step() + ".safetensors"));
            }
        } finally {
            samples.forEach(s -> s.latents().close());
        }
        return 0;
    }
}
