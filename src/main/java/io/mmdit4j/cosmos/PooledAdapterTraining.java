package io.mmdit4j.cosmos;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.io.SafetensorsWriter;
import io.mmdit4j.nn.Linear;
import io.mmdit4j.nn.MlpEmbedder;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.runtime.Torch;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.AdamW;
import org.bytedeco.pytorch.AdamWOptions;
import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.InferenceMode;
import org.bytedeco.pytorch.InputArchive;
import org.bytedeco.pytorch.OutputArchive;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.bytedeco.pytorch.global.torch.cat;
import static org.bytedeco.pytorch.global.torch.createCPUGenerator;
import static org.bytedeco.pytorch.global.torch.empty;
import static org.bytedeco.pytorch.global.torch.randn;
import static org.bytedeco.pytorch.global.torch.sigmoid;
import static org.bytedeco.pytorch.global.torch.zeros;

/**
 * The modulation-guidance paper's fine-tuning step for COSMOS: trains only the pooled-CLIP adapter
 * ({@code text_embedder_clip} and the per-block gains {@code scales}, zero-initialised) on (latents, prompt) pairs while
 * the base model stays frozen, with AdamW (libtorch's, through the presets) and the flow-matching loss of COSMOS's own
 * parameterisation: {@code x_t = (1−t)·x0 + t·n}, target {@code n − x0} (the model's F; the sampler's
 * {@code x0 = (1−t)·x_t − t·F} inverts it), {@code t = sigmoid(N(0, 1))} (logit-normal), pooled term in every block (no
 * guidance while training, as {@code w = 0}).
 *
 * <p>Checkpoints in {@code out/}: {@code checkpoint_<step>.safetensors} (the adapter under the reference's names, what
 * {@code generate --adapter} loads), {@code optimizer_<step>.pt} (libtorch's AdamW state archive) and
 * {@code train_state.json} (step, seed, settings); {@code loss.csv} logs every step. A resumed run continues from the
 * newest checkpoint with the same data order and noise as an uninterrupted one (both derive from the seed and the step).
 */
public final class PooledAdapterTraining implements AutoCloseable {
    /** Training settings. */
    public record Settings(int steps, int batch, double lr, double weightDecay, long seed, int saveEvery, int maxSequenceLength) {
        public Settings {
            if (steps < 1 || batch < 1 || saveEvery < 1 || maxSequenceLength < 1) throw new IllegalArgumentException("steps, batch, save-every and text length must be >= 1");
            if (!(lr > 0) || weightDecay < 0) throw new IllegalArgumentException("lr must be > 0 and weight decay >= 0");
        }

        /** The paper's 4 K iterations; AdamW lr 1e-4, weight decay 0.01. */
        public static Settings paper() {
            return new Settings(4000, 1, 1e-4, 0.01, 0, 500, 512);
        }
    }

    /** One training pair: normalised latents [16, 1, h, w] (float32, owned) and its prompt. */
    public record Sample(Tensor latents, String prompt, Path file) {}

    private final CosmosTransformer transformer;
    private final CosmosTextEncoders text;
    private final List<Sample> samples;
    private final Settings settings;
    private final Path out;
    private final List<Tensor> params = new ArrayList<>(); // the adapter's trainable tensors, fp32 leaves
    private final PooledClipAdapter adapter;
    private final AdamW optimizer;
    private final Map<Integer, Tensor[]> encoded = new LinkedHashMap<>(); // sample -> {T5 [1,L,d], pooled [1,P]}
    private int step;

    /**
     * @param transformer the base model (its own adapter, if any, is set aside for the run and restored on close)
     * @param resume      continue from the newest checkpoint in {@code out} (an error when there is none)
     */
    public PooledAdapterTraining(CosmosTransformer transformer, CosmosTextEncoders text, List<Sample> samples, Settings settings, Path out, boolean resume) {
        Torch.init();
        if (samples.isEmpty()) throw new IllegalArgumentException("no training samples");
        if (text.pooledDim() < 1) throw new IllegalArgumentException("the CLIP gives no pooled width");
        for (Sample s : samples) {
            if (s.latents().dim() != 4 || s.latents().size(0) != transformer.config().inChannels() || s.latents().size(1) != 1) {
                throw new IllegalArgumentException(s.file() + ": latents of shape " + java.util.Arrays.toString(Tensors.shape(s.latents()))
                        + ", expected [" + transformer.config().inChannels() + ", 1, h, w]");
            }
        }
        this.transformer = transformer;
        this.text = text;
        this.samples = samples;
        this.settings = settings;
        this.out = out;
        CosmosConfig c = transformer.config();
        Path from = resume ? newest(out) : null;
        if (resume && from == null) throw new IllegalArgumentException(out + ": --resume, but no checkpoint_<step>.safetensors there");
        try (PointerScope scope = new PointerScope()) {
            Map<String, Tensor> init = from != null ? read(from) : initial(c.numLayers(), c.conditioningDim(), text.pooledDim(), settings.seed());
            for (String k : List.of(PooledClipAdapter.SCALES, PooledClipAdapter.PREFIX + ".linear_1.weight", PooledClipAdapter.PREFIX + ".linear_1.bias",
                    PooledClipAdapter.PREFIX + ".linear_2.weight", PooledClipAdapter.PREFIX + ".linear_2.bias")) {
                Tensor t = init.get(k);
                if (t == null) throw new ModelFormatException(from + ": no tensor '" + k + "'");
                params.add(Native.keep(t.to(ScalarType.Float).clone().detach().requires_grad_(true)));
            }
        }
        MlpEmbedder te = new MlpEmbedder(new Linear(Native.keep(params.get(1).view(Tensors.shape(params.get(1)))), Native.keep(params.get(2).view(Tensors.shape(params.get(2))))),
                new Linear(Native.keep(params.get(3).view(Tensors.shape(params.get(3)))), Native.keep(params.get(4).view(Tensors.shape(params.get(4))))));
        adapter = new PooledClipAdapter(te, Native.keep(params.get(0).view(Tensors.shape(params.get(0)))));
        if (adapter.scales().size(0) != c.numLayers() || adapter.conditioningDim() != c.conditioningDim() || adapter.pooledDim() != text.pooledDim()) {
            adapter.close();
            throw new ModelFormatException(from + ": an adapter of " + adapter.numBlocks() + " blocks, width " + adapter.conditioningDim() + ", pooled "
                    + adapter.pooledDim() + " for a model of " + c.numLayers() + " blocks, width " + c.conditioningDim() + ", CLIP " + text.pooledDim());
        }
        AdamWOptions o = new AdamWOptions(settings.lr());
        o.weight_decay().put(settings.weightDecay());
        optimizer = new AdamW(new TensorVector(params.toArray(new Tensor[0])), o);
        if (from != null) {
            step = stepOf(from);
            Path opt = out.resolve("optimizer_" + step + ".pt");
            if (Files.isRegularFile(opt)) {
                try (InputArchive a = new InputArchive()) {
                    a.load_from(opt.toString());
                    optimizer.load(a);
                }
            } else {
                throw new ModelFormatException(opt + ": missing (the optimizer state of checkpoint " + step + ")");
            }
        }
    }

    /** PyTorch's {@code nn.Linear} initialisation (U(−1/√in, 1/√in) for weight and bias) for the projection; zero gains. */
    static Map<String, Tensor> initial(int blocks, long condDim, long pooledDim, long seed) {
        Generator g = createCPUGenerator(seed);
        GeneratorOptional gen = new GeneratorOptional(g);
        TensorOptions f32 = new TensorOptions(ScalarType.Float);
        Map<String, Tensor> m = new LinkedHashMap<>();
        m.put(PooledClipAdapter.SCALES, zeros(new long[] {blocks, condDim}, f32));
        double b1 = 1 / Math.sqrt(pooledDim), b2 = 1 / Math.sqrt(condDim);
        m.put(PooledClipAdapter.PREFIX + ".linear_1.weight", empty(new long[] {condDim, pooledDim}, f32, new org.bytedeco.pytorch.MemoryFormatOptional()).uniform_(-b1, b1, gen));
        m.put(PooledClipAdapter.PREFIX + ".linear_1.bias", empty(new long[] {condDim}, f32, new org.bytedeco.pytorch.MemoryFormatOptional()).uniform_(-b1, b1, gen));
        m.put(PooledClipAdapter.PREFIX + ".linear_2.weight", empty(new long[] {condDim, condDim}, f32, new org.bytedeco.pytorch.MemoryFormatOptional()).uniform_(-b2, b2, gen));
        m.put(PooledClipAdapter.PREFIX + ".linear_2.bias", empty(new long[] {condDim}, f32, new org.bytedeco.pytorch.MemoryFormatOptional()).uniform_(-b2, b2, gen));
        return m;
    }

    /** The step training has reached (the number of optimizer steps taken). */
    public int step() {
        return step;
    }

    /** The adapter being trained (its tensors are the optimizer's; do not close). */
    public PooledClipAdapter adapter() {
        return adapter;
    }

    /**
     * Runs until {@link Settings#steps}; {@code onStep} gets (step, loss) after each. Saves every {@code saveEvery} steps and
     * at the end. Returns the losses of the steps run by this call.
     */
    public List<Double> run(java.util.function.BiConsumer<Integer, Double> onStep) throws IOException {
        Files.createDirectories(out);
        List<Double> losses = new ArrayList<>();
        PooledClipAdapter before = transformer.replaceAdapter(null);
        try {
            while (step < settings.steps()) {
                double loss = trainStep();
                step++;
                losses.add(loss);
                appendLoss(step, loss);
                if (onStep != null) onStep.accept(step, loss);
                if (step % settings.saveEvery() == 0 || step == settings.steps()) save();
            }
        } finally {
            transformer.replaceAdapter(before);
        }
        return losses;
    }

    /**
     * The loss of the current adapter on every sample with {@code draws} fixed (noise, t) draws from {@code seed}, without
     * gradients: a held-still measure of progress (the training loss itself is noisy over t).
     */
    public double evaluate(int draws, long seed) {
        double sum = 0;
        PooledClipAdapter saved = transformer.replaceAdapter(adapter);
        try (InferenceMode guard = new InferenceMode()) {
            for (int i = 0; i < samples.size(); i++) {
                for (int d = 0; d < draws; d++) sum += loss(new int[] {i}, seed * 7919 + (long) i * draws + d, false);
            }
        } finally {
            transformer.replaceAdapter(saved);
        }
        return sum / (samples.size() * draws);
    }

    /** One optimizer step on the batch of this step; returns the loss. */
    double trainStep() {
        PooledClipAdapter saved = transformer.replaceAdapter(adapter);
        try {
            return loss(batchOf(step), settings.seed() * 1_000_003L + step, true);
        } finally {
            transformer.replaceAdapter(saved);
        }
    }

    /** The flow-matching loss of {@code batch} with noise and t from {@code noiseSeed}; with {@code train}, backward and an AdamW step. */
    private double loss(int[] batch, long noiseSeed, boolean train) {
        try (PointerScope scope = new PointerScope()) {
            TensorVector x0s = new TensorVector(), texts = new TensorVector(), pooleds = new TensorVector();
            for (int i : batch) {
                if (!java.util.Arrays.equals(Tensors.shape(samples.get(i).latents()), Tensors.shape(samples.get(batch[0]).latents()))) {
                    throw new IllegalArgumentException("a batch of " + batch.length + " needs latents of one size: " + samples.get(i).file() + " and "
                            + samples.get(batch[0]).file() + " differ (train with --batch 1)");
                }
                Tensor[] e = encoded(i);
                x0s.push_back(samples.get(i).latents().unsqueeze(0));
                texts.push_back(e[0]);
                pooleds.push_back(e[1]);
            }
            Tensor x0 = cat(x0s, 0).to(ScalarType.Float);
            long b = x0.size(0);
            Tensor text = cat(texts, 0), pooled = cat(pooleds, 0);
            GeneratorOptional gen = new GeneratorOptional(createCPUGenerator(noiseSeed));
            TensorOptions f32 = new TensorOptions(ScalarType.Float);
            Tensor noise = randn(Tensors.shape(x0), gen, f32);
            Tensor t = sigmoid(randn(new long[] {b}, gen, f32));                                   // logit-normal t
            Tensor tt = t.view(b, 1, 1, 1, 1);
            Tensor xt = x0.mul(tt.neg().add(new Scalar(1.0))).add(noise.mul(tt));                   // (1−t)·x0 + t·n
            Tensor target = noise.sub(x0);                                                          // F* = n − x0
            Tensor pred = transformer.forwardWithGrad(xt, t, text, pooled);
            Tensor loss = pred.to(ScalarType.Float).sub(target).pow(new Scalar(2.0)).mean();
            if (train) {
                optimizer.zero_grad();
                loss.backward();
                optimizer.step();
            }
            return loss.item_double();
        }
    }

    /** T5 and CLIP of sample {@code i}, computed once (no grad; cloned out of inference mode for autograd). */
    private Tensor[] encoded(int i) {
        Tensor[] e = encoded.get(i);
        if (e != null) return e;
        try (PointerScope scope = new PointerScope()) {
            CosmosTextEncoders.Embeddings emb;
            try (InferenceMode guard = new InferenceMode()) {
                emb = text.encode(List.of(samples.get(i).prompt()), 1, settings.maxSequenceLength());
            }
            try (emb) {
                e = new Tensor[] {Tensors.keep(emb.text().clone()), Tensors.keep(emb.pooled().clone())};
            }
        }
        encoded.put(i, e);
        return e;
    }

    /** The samples of step {@code s}: an epoch-wise shuffle of the data from the seed, so a resumed run sees the same order. */
    int[] batchOf(int s) {
        int n = samples.size(), bs = settings.batch();
        int[] out = new int[bs];
        for (int j = 0; j < bs; j++) {
            long k = (long) s * bs + j;
            int epoch = (int) (k / n), at = (int) (k % n);
            List<Integer> order = new ArrayList<>();
            for (int i = 0; i < n; i++) order.add(i);
            Collections.shuffle(order, new Random(settings.seed() * 31 + epoch));
            out[j] = order.get(at);
        }
        return out;
    }

    /** Writes checkpoint_<step>.safetensors, optimizer_<step>.pt and train_state.json. */
    public Path save() throws IOException {
        Files.createDirectories(out);
        Path file = out.resolve("checkpoint_" + step + ".safetensors");
        Map<String, Tensor> m = new LinkedHashMap<>();
        try (PointerScope scope = new PointerScope(); InferenceMode guard = new InferenceMode()) {
            String[] names = {PooledClipAdapter.SCALES, PooledClipAdapter.PREFIX + ".linear_1.weight", PooledClipAdapter.PREFIX + ".linear_1.bias",
                    PooledClipAdapter.PREFIX + ".linear_2.weight", PooledClipAdapter.PREFIX + ".linear_2.bias"};
            for (int i = 0; i < names.length; i++) m.put(names[i], params.get(i).detach().contiguous());
            SafetensorsWriter.write(file, m, Map.of("format", "pt", "generated_by", "mmdit4j train --recipe pooled-adapter", "step", String.valueOf(step)));
        }
        try (OutputArchive a = new OutputArchive()) {
            optimizer.save(a);
            a.save_to(out.resolve("optimizer_" + step + ".pt").toString());
        }
        ObjectNode s = new ObjectMapper().createObjectNode().put("recipe", "pooled-adapter").put("step", step).put("steps", settings.steps())
                .put("batch", settings.batch()).put("lr", settings.lr()).put("weight_decay", settings.weightDecay()).put("seed", settings.seed())
                .put("max_sequence_length", settings.maxSequenceLength()).put("samples", samples.size()).put("adapter", file.getFileName().toString());
        Files.writeString(out.resolve("train_state.json"), new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsString(s));
        return file;
    }

    private void appendLoss(int s, double loss) throws IOException {
        Path csv = out.resolve("loss.csv");
        if (!Files.exists(csv)) Files.writeString(csv, "step,loss\n");
        Files.writeString(csv, String.format(Locale.ROOT, "%d,%.8g%n", s, loss), java.nio.file.StandardOpenOption.APPEND);
    }

    private static final Pattern CHECKPOINT = Pattern.compile("checkpoint_(\\d+)\\.safetensors");

    /** The newest {@code checkpoint_<step>.safetensors} in {@code dir}, or null. */
    static Path newest(Path dir) {
        if (!Files.isDirectory(dir)) return null;
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> CHECKPOINT.matcher(p.getFileName().toString()).matches()).max(java.util.Comparator.comparingInt(PooledAdapterTraining::stepOf))
                    .orElse(null);
        } catch (IOException e) {
            throw new ModelFormatException(dir + ": cannot list: " + e.getMessage(), e);
        }
    }

    private static int stepOf(Path p) {
        Matcher m = CHECKPOINT.matcher(p.getFileName().toString());
        return m.matches() ? Integer.parseInt(m.group(1)) : -1;
    }

    private static Map<String, Tensor> read(Path file) {
        Map<String, Tensor> m = new LinkedHashMap<>();
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            for (String k : f.keys()) m.put(k, f.load(k).clone());
        }
        return m;
    }

    /**
     * The training pairs of a folder: {@code *.safetensors} files holding {@code latents} ({@code [16, 1, h, w]} or
     * {@code [1, 16, 1, h, w]}, normalised as the sampler produces them; {@code generate --save-latents} writes them) with the
     * prompt in the metadata ({@code prompt}) or a sibling {@code .txt}. Sorted by name.
     */
    public static List<Sample> readSamples(Path dir, Consumer<String> warn) {
        if (!Files.isDirectory(dir)) throw new IllegalArgumentException("--data " + dir + ": not a folder");
        List<Path> files;
        try (Stream<Path> s = Files.list(dir)) {
            files = s.filter(p -> p.getFileName().toString().endsWith(".safetensors")).sorted().toList();
        } catch (IOException e) {
            throw new IllegalArgumentException("--data " + dir + ": " + e.getMessage(), e);
        }
        List<Sample> out = new ArrayList<>();
        for (Path f : files) {
            try (SafetensorsFile st = SafetensorsFile.open(f); PointerScope scope = new PointerScope()) {
                if (st.info("latents") == null) {
                    if (warn != null) warn.accept(f + ": no 'latents' tensor, skipped");
                    continue;
                }
                String prompt = st.header().metadata().get("prompt");
                Path txt = f.resolveSibling(f.getFileName().toString().replaceFirst("(\\.latents)?\\.safetensors$", ".txt"));
                if (prompt == null && Files.isRegularFile(txt)) prompt = Files.readString(txt).strip();
                if (prompt == null) throw new IllegalArgumentException(f + ": no prompt (metadata 'prompt' or " + txt.getFileName() + ")");
                Tensor l = st.load("latents").to(ScalarType.Float);
                if (l.dim() == 5 && l.size(0) == 1) l = l.select(0, 0);
                out.add(new Sample(Tensors.keep(l.contiguous().clone()), prompt, f));
            } catch (IOException e) {
                throw new IllegalArgumentException(f + ": " + e.getMessage(), e);
            }
        }
        if (out.isEmpty()) {
            throw new IllegalArgumentException("--data " + dir + ": no training pairs (*.safetensors with 'latents' and a prompt; write them with "
                    + "`mmdit generate --save-latents`)");
        }
        return out;
    }

    @Override
    public void close() {
        optimizer.close();
        adapter.close();
        params.forEach(Native::release);
        encoded.values().forEach(e -> {
            for (Tensor t : e) Native.release(t);
        });
        encoded.clear();
    }
}
