package io.mmdit4j.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.bytedeco.pytorch.global.torch.createCPUGenerator;
import static org.bytedeco.pytorch.global.torch.rand;
import static org.bytedeco.pytorch.global.torch.randn;
import static org.bytedeco.pytorch.global.torch.stack;

/**
 * A FLUX training run: the loop around {@link FluxTrainer} with what a run needs besides the step — a seeded data order,
 * noise, timesteps (logit-normal by default) and caption dropout (the T5 states and the pooled vector dropped
 * independently, replaced by the empty caption's), warm-up + cosine learning rate, gradient clipping, an EMA of the
 * weights, progress lines (loss, it/s, samples/s, ETA), checkpoints and resumption.
 *
 * <p>Everything random in step {@code s} derives from the seed and {@code s} alone, so a run resumed from the checkpoint of
 * step {@code k} continues with exactly the draws the uninterrupted run had after step {@code k}.
 *
 * <p>Checkpoints: {@code out/checkpoint-NNNNNN/} with {@code transformer/} (a diffusers model folder: {@code config.json} and
 * {@code diffusion_pytorch_model.safetensors}; a LoRA run: {@code pytorch_lora_weights.safetensors}), {@code transformer_ema/}
 * with EMA, {@code optimizer.pt} (libtorch's AdamW state), {@code trainer_state.json} (step, settings, every loss so far);
 * each is written into a hidden temporary folder and renamed into place (a kill leaves either the whole checkpoint or none);
 * the last {@link Settings#keep} are kept. {@code out/loss.csv} and {@code out/loss.png} follow every checkpoint.
 */
public final class TrainingRun implements AutoCloseable {
    /**
     * The run's settings; all but {@code steps}, {@code lrStages} and {@code saveEvery} must match when resuming (those three
     * may change: a finished run continues with more steps). {@code lrStages}: the ends of the cosine stages
     * ({@link LrSchedule#stageEnds}), empty for one cosine over {@code steps}. {@code init}: the pipeline whose transformer
     * the run started from (and whose VAE encoded its data), empty for random weights.
     */
    public record Settings(String recipe, int steps, int batch, double lr, int warmup, boolean cosine, List<Integer> lrStages, double weightDecay,
                           double maxGradNorm, double emaDecay, double dropT5, double dropPooled, FlowMatching.Scheme density, long seed, int saveEvery,
                           int keep, double guidance, boolean bf16, String init) {
        public Settings {
            lrStages = List.copyOf(lrStages);
            if (init == null) init = "";
            if (steps < 1 || batch < 1 || saveEvery < 1 || keep < 1) throw new IllegalArgumentException("steps, batch, save-every and keep must be >= 1");
            if (!(lr > 0) || weightDecay < 0 || maxGradNorm < 0 || warmup < 0) throw new IllegalArgumentException("lr > 0, weight decay, clip norm and warm-up >= 0");
            if (emaDecay != 0 && !(emaDecay > 0 && emaDecay < 1)) throw new IllegalArgumentException("EMA decay must be 0 (off) or in (0, 1)");
            if (!(dropT5 >= 0 && dropT5 <= 1 && dropPooled >= 0 && dropPooled <= 1)) throw new IllegalArgumentException("caption dropout must be in [0, 1]");
            new LrSchedule(lr, warmup, steps, cosine, lrStages); // checks the stages before the first step
        }

        LrSchedule schedule() {
            return new LrSchedule(lr, warmup, steps, cosine, lrStages);
        }

        ObjectNode toJson() {
            ObjectNode json = new ObjectMapper().createObjectNode().put("recipe", recipe).put("steps", steps).put("batch", batch).put("lr", lr)
                    .put("warmup", warmup).put("cosine", cosine);
            lrStages.forEach(json.putArray("lr_stages")::add);
            return json.put("weight_decay", weightDecay).put("max_grad_norm", maxGradNorm)
                    .put("ema_decay", emaDecay).put("caption_dropout_t5", dropT5).put("caption_dropout_pooled", dropPooled)
                    .put("timestep_density", density.id()).put("seed", seed).put("save_every", saveEvery).put("guidance", guidance).put("autocast_bf16", bf16).put("init", init);
        }
    }

    /** One step's report to a listener. */
    public record Step(int step, int steps, double loss, double gradNorm, double lr, double secondsPerStep, double etaSeconds, int batch) {}

    /** Sees every step; returning false stops the run at once (as a kill would: nothing more is written). */
    @FunctionalInterface
    public interface Listener {
        boolean onStep(Step s);
    }

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Pattern CHECKPOINT = Pattern.compile("checkpoint-(\\d{6})");

    private final FluxTrainable model;
    private final TrainingData data;
    private final Settings settings;
    private final LrSchedule schedule;
    private final Path out;
    private final FluxTrainer trainer;
    private final Ema ema;
    private final List<Double> losses = new ArrayList<>();
    private int step;

    /**
     * Prepares a run writing into {@code out}. Without {@code resume}, {@code out} must not hold checkpoints (nothing is
     * overwritten); with it, the newest checkpoint there is read and checked (settings, tensors, optimizer state) before
     * anything is written, and a damaged one is refused with a {@link ModelFormatException}.
     */
    public TrainingRun(FluxTrainable model, TrainingData data, Settings settings, FluxTrainer.Optim optim, Path out, boolean resume) {
        if (data.size() < 1) throw new IllegalArgumentException("no training samples");
        this.model = model;
        this.data = data;
        this.settings = settings;
        this.schedule = settings.schedule();
        this.out = out;
        Path from = newest(out);
        if (!resume && from != null) {
            throw new IllegalArgumentException(out + " holds " + from.getFileName() + ": pass --resume to continue it, or choose another --out (nothing was overwritten)");
        }
        if (resume && from == null) throw new IllegalArgumentException(out + ": --resume, but no checkpoint-NNNNNN there");
        FluxTrainer t = new FluxTrainer(model, optim).autocastBf16(settings.bf16());
        Ema e = null;
        try {
            if (from != null) {
                JsonNode state = readState(from);
                checkSettings(from, state);
                Map<String, Tensor> weights = readTensors(from.resolve("transformer"), from);
                try {
                    model.load(weights, from.resolve("transformer").toString());
                } finally {
                    weights.values().forEach(Native::release);
                }
                t.loadOptimizer(from.resolve("optimizer.pt"));
                step = state.get("step").asInt();
                state.get("losses").forEach(l -> losses.add(l.asDouble()));
                if (losses.size() != step) throw new ModelFormatException(from + ": corrupt checkpoint: " + losses.size() + " losses for step " + step);
            }
            if (settings.emaDecay() > 0) {
                e = new Ema(model.trainable(), settings.emaDecay());
                if (from != null) {
                    Map<String, Tensor> avg = readTensors(from.resolve("transformer_ema"), from);
                    try {
                        e.load(avg);
                    } finally {
                        avg.values().forEach(Native::release);
                    }
                }
            }
        } catch (RuntimeException ex) {
            t.close();
            if (e != null) e.close();
            throw ex;
        }
        this.trainer = t;
        this.ema = e;
    }

    public int step() {
        return step;
    }

    public List<Double> losses() {
        return Collections.unmodifiableList(losses);
    }

    /** The EMA weights (trainable names), or null without EMA. */
    public Map<String, Tensor> emaWeights() {
        return ema == null ? null : ema.values();
    }

    /** Runs to {@link Settings#steps}; returns false when a listener stopped it. */
    public boolean run(Listener listener) throws IOException {
        Files.createDirectories(out);
        long t0 = System.nanoTime();
        int first = step;
        while (step < settings.steps()) {
            double[] r = trainStep(step);
            step++;
            losses.add(r[0]);
            double perStep = (System.nanoTime() - t0) / 1e9 / (step - first);
            boolean go = listener == null || listener.onStep(new Step(step, settings.steps(), r[0], r[1], r[2], perStep,
                    perStep * (settings.steps() - step), settings.batch()));
            if (!go) return false;
            if (step % settings.saveEvery() == 0 || step == settings.steps()) save();
        }
        return true;
    }

    /**
     * The loss over every sample with {@code draws} fixed (noise, σ) pairs each from {@code seed}, no caption dropout, no
     * gradients: a held-still measure of progress (the training loss itself jumps with σ).
     */
    public double evaluate(int draws, long seed) {
        double sum = 0;
        int n = 0;
        for (int i = 0; i < data.size(); i++) {
            for (int k = 0; k < draws; k++) {
                try (PointerScope scope = new PointerScope()) {
                    Generator g = createCPUGenerator(seed * 7919 + (long) i * draws + k);
                    Tensor x0 = data.latents(i).unsqueeze(0);
                    TensorOptions f32 = new TensorOptions(ScalarType.Float);
                    Tensor noise = randn(Tensors.shape(x0), new GeneratorOptional(g), f32);
                    Tensor sigmas = FlowMatching.sigmas(FlowMatching.sampleIndices(FlowMatching.Density.of(FlowMatching.Scheme.NONE), 1, g));
                    sum += trainer.loss(batch(x0, data.promptEmbeds(i).unsqueeze(0), data.pooled(i).unsqueeze(0)), noise, sigmas, FlowMatching.Scheme.NONE);
                    n++;
                }
            }
        }
        return sum / n;
    }

    private FluxTrainer.Batch batch(Tensor x0, Tensor t5, Tensor pooled) {
        TensorOptions f32 = new TensorOptions(ScalarType.Float);
        long b = x0.size(0), h = x0.size(2), w = x0.size(3);
        Tensor guidance = model.config().guidanceEmbeds()
                ? org.bytedeco.pytorch.global.torch.full(new long[] {b}, new org.bytedeco.pytorch.Scalar(settings.guidance()), f32) : null;
        return new FluxTrainer.Batch(x0, t5, pooled, org.bytedeco.pytorch.global.torch.zeros(new long[] {t5.size(1), 3}, f32),
                io.mmdit4j.flux.FluxInputs.imageIds(h / 2, w / 2), guidance);
    }

    /** The samples of step {@code s}: epoch-wise shuffles of the data from the seed. */
    int[] batchOf(int s) {
        int n = data.size(), bs = settings.batch();
        int[] idx = new int[bs];
        int cachedEpoch = -1;
        List<Integer> order = null;
        for (int j = 0; j < bs; j++) {
            long k = (long) s * bs + j;
            int epoch = (int) (k / n), at = (int) (k % n);
            if (epoch != cachedEpoch) {
                order = new ArrayList<>();
                for (int i = 0; i < n; i++) order.add(i);
                Collections.shuffle(order, new Random(settings.seed() * 31 + epoch));
                cachedEpoch = epoch;
            }
            idx[j] = order.get(at);
        }
        return idx;
    }

    /** One optimizer step {@code s} (0-based): {loss, grad norm before clipping, lr}. */
    private double[] trainStep(int s) {
        try (PointerScope scope = new PointerScope()) {
            Generator g = createCPUGenerator(settings.seed() * 1_000_003L + s);
            GeneratorOptional gen = new GeneratorOptional(g);
            int[] idx = batchOf(s);
            int b = idx.length;
            TensorOptions f32 = new TensorOptions(ScalarType.Float);
            Tensor drop = rand(new long[] {b, 2}, gen, f32);
            float[] d = Tensors.toFloats(drop);
            TensorVector x0s = new TensorVector(), t5s = new TensorVector(), pooleds = new TensorVector();
            for (int j = 0; j < b; j++) {
                x0s.push_back(data.latents(idx[j]));
                t5s.push_back(d[2 * j] < settings.dropT5() ? data.emptyPromptEmbeds() : data.promptEmbeds(idx[j]));
                pooleds.push_back(d[2 * j + 1] < settings.dropPooled() ? data.emptyPooled() : data.pooled(idx[j]));
            }
            Tensor x0 = stack(x0s, 0), t5 = stack(t5s, 0), pooled = stack(pooleds, 0);
            Tensor noise = randn(Tensors.shape(x0), gen, f32);
            Tensor sigmas = FlowMatching.sigmas(FlowMatching.sampleIndices(FlowMatching.Density.of(settings.density()), b, g));
            double loss = trainer.lossAndBackward(batch(x0, t5, pooled), noise, sigmas, settings.density(), null);
            GradNorms.Result norms = trainer.clip(settings.maxGradNorm());
            double lr = schedule.at(s);
            trainer.step(lr);
            if (ema != null) ema.update(model.trainable(), s + 1);
            return new double[] {loss, norms.total(), lr};
        }
    }

    /** Writes {@code checkpoint-<step>} atomically, then {@code loss.csv} / {@code loss.png}, and prunes old checkpoints. */
    public Path save() throws IOException {
        Path dir = out.resolve(String.format(Locale.ROOT, "checkpoint-%06d", step));
        Path tmp = out.resolve(String.format(Locale.ROOT, ".checkpoint-%06d.tmp", step));
        deleteTree(tmp);
        Files.createDirectories(tmp);
        try {
            Map<String, String> meta = Map.of("generated_by", "mmdit4j train --recipe " + settings.recipe(), "step", String.valueOf(step));
            model.save(tmp.resolve("transformer"), null, meta);
            if (ema != null) model.save(tmp.resolve("transformer_ema"), ema.values(), meta);
            trainer.saveOptimizer(tmp.resolve("optimizer.pt"));
            ObjectNode state = JSON.createObjectNode().put("format", "mmdit4j-train-1").put("step", step);
            state.set("settings", settings.toJson());
            state.put("data", data.describe());
            state.put("mode", model.isLora() ? "lora" : "full");
            ArrayNode l = state.putArray("losses");
            losses.forEach(l::add);
            Files.writeString(tmp.resolve("trainer_state.json"), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(state));
            deleteTree(dir); // only a checkpoint of this very step (a run that was stopped after writing it)
            Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            deleteTree(tmp);
        }
        writeLossFiles();
        prune();
        return dir;
    }

    private void writeLossFiles() throws IOException {
        StringBuilder csv = new StringBuilder("step,loss\n");
        for (int i = 0; i < losses.size(); i++) csv.append(String.format(Locale.ROOT, "%d,%.8g%n", i + 1, losses.get(i)));
        Path tmp = out.resolve(".loss.csv.tmp");
        Files.writeString(tmp, csv);
        Files.move(tmp, out.resolve("loss.csv"), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        LossPlot.write(out.resolve("loss.png"), losses, "mmdit train --recipe " + settings.recipe() + ": loss per step (blue: moving average)");
    }

    private void prune() throws IOException {
        List<Path> all = checkpoints(out);
        for (int i = 0; i < all.size() - settings.keep(); i++) deleteTree(all.get(i));
    }

    /** The complete checkpoints in {@code dir}, oldest first. */
    static List<Path> checkpoints(Path dir) {
        if (!Files.isDirectory(dir)) return List.of();
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> Files.isDirectory(p) && CHECKPOINT.matcher(p.getFileName().toString()).matches())
                    .sorted(Comparator.comparing(p -> p.getFileName().toString())).toList();
        } catch (IOException e) {
            throw new IllegalArgumentException(dir + ": cannot list: " + e.getMessage(), e);
        }
    }

    /** The newest complete checkpoint in {@code dir}, or null. */
    public static Path newest(Path dir) {
        List<Path> all = checkpoints(dir);
        return all.isEmpty() ? null : all.get(all.size() - 1);
    }

    /** The step a checkpoint folder's name ({@code checkpoint-NNNNNN}) says it holds. */
    public static int stepOf(Path checkpoint) {
        Matcher m = CHECKPOINT.matcher(checkpoint.getFileName().toString());
        if (!m.matches()) throw new IllegalArgumentException(checkpoint + ": not a checkpoint-NNNNNN folder");
        return Integer.parseInt(m.group(1));
    }

    /**
     * Refuses to resume {@code checkpoint} from another pipeline than its run started from ({@code --init}; empty for
     * random weights). Called before any model loads: a resumed run must encode its data with that pipeline's VAE.
     */
    public static void requireSameInit(Path checkpoint, String init) {
        String then = readState(checkpoint).path("settings").path("init").asText(""), now = init == null ? "" : init;
        if (!then.equals(now)) {
            throw new IllegalArgumentException(checkpoint + " was trained with " + (then.isEmpty() ? "no --init" : "--init " + then) + ", this run has "
                    + (now.isEmpty() ? "none" : "--init " + now) + " (resume with the same --init; nothing was overwritten)");
        }
    }

    private static JsonNode readState(Path ckpt) {
        Path f = ckpt.resolve("trainer_state.json");
        JsonNode s;
        try {
            s = JSON.readTree(Files.readString(f));
        } catch (IOException | RuntimeException e) {
            throw new ModelFormatException(ckpt + ": corrupt checkpoint: cannot read trainer_state.json (" + e.getMessage() + ")", e);
        }
        if (s == null || !s.path("step").isInt() || !s.path("losses").isArray() || !s.path("settings").isObject()) {
            throw new ModelFormatException(ckpt + ": corrupt checkpoint: trainer_state.json lacks step, losses or settings");
        }
        if (CHECKPOINT.matcher(ckpt.getFileName().toString()).matches() && stepOf(ckpt) != s.get("step").asInt()) {
            throw new ModelFormatException(ckpt + ": corrupt checkpoint: trainer_state.json says step " + s.get("step").asInt());
        }
        return s;
    }

    /** The settings that shape the run must be the checkpoint's (steps and the checkpoint interval may change). */
    private void checkSettings(Path ckpt, JsonNode state) {
        ObjectNode now = settings.toJson(), then = (ObjectNode) state.get("settings");
        for (String k : List.of("recipe", "batch", "lr", "warmup", "cosine", "weight_decay", "max_grad_norm", "ema_decay", "caption_dropout_t5",
                "caption_dropout_pooled", "timestep_density", "seed", "guidance", "init")) {
            if (!now.path(k).asText().equals(then.path(k).asText())) {
                throw new IllegalArgumentException(ckpt + " was trained with " + k + " = " + then.path(k) + ", this run has " + now.path(k)
                        + " (resume with the same settings)");
            }
        }
        if (!state.path("mode").asText("").equals(model.isLora() ? "lora" : "full")) {
            throw new IllegalArgumentException(ckpt + " is a " + state.path("mode").asText("?") + " run; this run is " + (model.isLora() ? "lora" : "full"));
        }
        if (!state.path("data").asText("").equals(data.describe())) {
            throw new IllegalArgumentException(ckpt + " was trained on " + state.path("data").asText("?") + ", this run reads " + data.describe());
        }
    }

    private Map<String, Tensor> readTensors(Path dir, Path ckpt) {
        try {
            Map<String, Tensor> m = model.read(dir);
            for (Map.Entry<String, Tensor> e : model.trainable().entrySet()) {
                Tensor t = m.get(e.getKey());
                if (t == null || !java.util.Arrays.equals(Tensors.shape(t), Tensors.shape(e.getValue()))) {
                    m.values().forEach(Native::release);
                    throw new ModelFormatException(dir + ": tensor '" + e.getKey() + "' missing or of another shape");
                }
            }
            return m;
        } catch (RuntimeException e) {
            throw new ModelFormatException(ckpt + ": corrupt checkpoint: " + firstLine(e.getMessage()), e);
        }
    }

    private static String firstLine(String s) {
        return FluxTrainer.firstLine(s);
    }

    private static void deleteTree(Path p) throws IOException {
        io.mmdit4j.runtime.Files2.deleteTree(p);
    }

    /** Closes the optimizer and the EMA (not the model or the data). */
    @Override
    public void close() {
        trainer.close();
        if (ema != null) ema.close();
    }
}
