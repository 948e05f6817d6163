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
        description = "Fine-tune the pooled-CLIP adapter of COSMOS (--recipe pooled-adapter) on (latents, prompt) pairs; the base model stays frozen.")
final class TrainCommand implements Callable<Integer> {
    @Option(names = "--recipe", required = true, description = "what to train: pooled-adapter (COSMOS's text_embedder_clip and per-block gains)")
    String recipe;
    @Option(names = "--base", required = true, description = "the COSMOS model (a Cosmos-Predict2 diffusers folder or a model name, e.g. cosmos-tiny-demo)")
    String base;
    @Option(names = "--data", required = true, description = "folder of *.safetensors with 'latents' and a prompt (metadata or .txt): generate --save-latents")
    Path data;
    @Option(names = "--out", defaultValue = "outputs/pooled-adapter", description = "checkpoints, loss.csv and train_state.json (default: ${DEFAULT-VALUE})")
    Path out;
    @Option(names = "--steps", defaultValue = "4000", description = "optimizer steps in all (the paper: 4000; default: ${DEFAULT-VALUE})")
    int steps;
    @Option(names = "--batch", defaultValue = "1", description = "samples per step (default: ${DEFAULT-VALUE})")
    int batch;
    @Option(names = "--lr", defaultValue = "1e-4", description = "AdamW learning rate (default: ${DEFAULT-VALUE})")
    double lr;
    @Option(names = "--weight-decay", defaultValue = "0.01", description = "AdamW weight decay (default: ${DEFAULT-VALUE})")
    double weightDecay;
    @Option(names = "--seed", defaultValue = "0", description = "initialisation, data order and noise (default: ${DEFAULT-VALUE})")
    long seed;
    @Option(names = "--save-every", defaultValue = "500", description = "checkpoint interval in steps (default: ${DEFAULT-VALUE})")
    int saveEvery;
    @Option(names = "--max-sequence-length", defaultValue = "512", description = "T5 tokens (default: ${DEFAULT-VALUE})")
    int maxSequenceLength;
    @Option(names = "--resume", description = "continue from the newest checkpoint in --out")
    boolean resume;
    @Option(names = "--dtype", description = "fp32 or bf16 for the frozen model (default: fp32; the adapter trains in fp32)")
    String dtype;
    @Option(names = "--text-encoders", description = "the folder of the CLIP-L (default: the model's text_encoder_2/, else $MMDIT_MODELS/FLUX.1-schnell)")
    Path textEncoders;
    @Mixin
    ThreadsOption threads = new ThreadsOption();

    @Override
    public Integer call() throws Exception {
        threads.apply();
        if (!recipe.equals("pooled-adapter")) throw new IllegalArgumentException("--recipe " + recipe + ": the only recipe is pooled-adapter");
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
