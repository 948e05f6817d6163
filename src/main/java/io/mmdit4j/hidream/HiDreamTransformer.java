package io.mmdit4j.hidream;

import io.mmdit4j.guidance.BlockConditioning;
import io.mmdit4j.guidance.ConditioningObserver;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.guidance.ModulationVisitor;
import io.mmdit4j.io.ParameterShapes;
import io.mmdit4j.io.RandomWeights;
import io.mmdit4j.io.StateDict;
import io.mmdit4j.io.TransformerFiles;
import io.mmdit4j.nn.Linear;
import io.mmdit4j.nn.MlpEmbedder;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.nn.Ops;
import io.mmdit4j.nn.Rope;
import io.mmdit4j.nn.Timesteps;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Scopes;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.InferenceMode;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;

import static org.bytedeco.pytorch.global.torch.cat;
import static org.bytedeco.pytorch.global.torch.ones;
import static org.bytedeco.pytorch.global.torch.zeros;

/**
 * HiDream-I1's transformer ({@code HiDreamImageTransformer2DModel}, diffusers 0.35) with modulation guidance as a
 * first-class argument: every block gets its own conditioning vector from a {@link ModulationGuidance} plan, counted
 * double blocks first, then single blocks, and the final layer gets the plan's final vector (HiDream guides it).
 *
 * <p>The forward takes the latents unpatchified, as {@code HiDreamImagePipeline} calls it: square latents become
 * {@code (h/2)·(w/2)} tokens; non-square ones are zero-padded to {@code max_seq} tokens whose keys are multiplied by 0
 * (not masked out: they keep softmax weight and their values count). The text stream is {@code [T5; Llama(last block's
 * layer)]} plus each block's own Llama layer, all projected per block by {@code caption_projection}. The output is the
 * raw model output; the pipeline's flow velocity is its negation.
 */
public final class HiDreamTransformer implements AutoCloseable {
    private final HiDreamConfig config;
    private final DType dtype;
    private final DeviceSpec device;
    private final Device torchDevice;

    final Linear x_embedder;                 // x_embedder.proj
    final MlpEmbedder t_embedder;            // t_embedder.timestep_embedder
    final MlpEmbedder p_embedder;            // p_embedder.pooled_embedder
    final List<HiDreamBlock> double_stream_blocks;
    final List<HiDreamBlock> single_stream_blocks;
    final Linear final_adaLN;                // final_layer.adaLN_modulation.1
    final Linear final_linear;               // final_layer.linear
    final List<Linear> caption_projection;   // caption_projection.i.linear (one per block, then T5's)

    private HiDreamTransformer(HiDreamConfig config, DType dtype, DeviceSpec device, Linear x, MlpEmbedder t, MlpEmbedder p,
                               List<HiDreamBlock> doubles, List<HiDreamBlock> singles, Linear finalAdaLN, Linear finalLinear,
                               List<Linear> captions) {
        this.config = config;
        this.dtype = dtype;
        this.device = device;
        this.torchDevice = Native.keep(device.torchDevice());
        this.x_embedder = x;
        this.t_embedder = t;
        this.p_embedder = p;
        this.double_stream_blocks = doubles;
        this.single_stream_blocks = singles;
        this.final_adaLN = finalAdaLN;
        this.final_linear = finalLinear;
        this.caption_projection = captions;
    }

    // ---------------------------------------------------------------- loading

    /** Loads a diffusers transformer folder (or a pipeline folder with {@code transformer/}; sharded or not) on the CPU. */
    public static HiDreamTransformer load(Path path, DType compute) {
        return load(path, compute, DeviceSpec.CPU);
    }

    /** As {@link #load(Path, DType)}, with the weights on {@code device}. */
    public static HiDreamTransformer load(Path path, DType compute, DeviceSpec device) {
        DType.checkCompute(compute);
        device.requireAvailable();
        return TransformerFiles.read(path, UnaryOperator.identity(), (folder, sd) -> fromStateDict(sd.onDevice(device), config(folder, sd), compute));
    }

    /** The configuration of a checkpoint: its config.json checked against the tensors, else detected from them. Headers only. */
    public static HiDreamConfig inspect(Path path) {
        return TransformerFiles.read(path, UnaryOperator.identity(), HiDreamTransformer::config);
    }

    /** {@code path/transformer} for a pipeline folder, else {@code path}: {@link TransformerFiles#transformerPath}. */
    public static Path transformerPath(Path path) {
        return TransformerFiles.transformerPath(path);
    }

    private static HiDreamConfig config(Path folder, StateDict sd) {
        Path json = TransformerFiles.configJson(folder);
        if (json == null) {
            if (!HiDreamConfig.recognizes(sd.keys())) {
                throw new io.mmdit4j.io.ModelFormatException(sd.origin() + ": not a HiDream transformer checkpoint (no "
                        + "'p_embedder.pooled_embedder' / 'double_stream_blocks.N.' tensors)");
            }
            return HiDreamConfig.detect(sd);
        }
        HiDreamConfig c = HiDreamConfig.fromDiffusersConfig(json);
        c.checkAgainst(sd);
        return c;
    }

    /** A shapes-only model on the meta device (no weight memory): real-size dry runs. */
    public static HiDreamTransformer meta(HiDreamConfig config, DType compute) {
        return fromStateDict(StateDict.recording("meta HiDream " + config), config, compute);
    }

    /** Every parameter under its diffusers name with its shape, in load order. */
    public static Map<String, long[]> parameterShapes(HiDreamConfig c) {
        return ParameterShapes.of("HiDream parameters " + c, sd -> fromStateDict(sd, c, DType.F32));
    }

    /** Deterministic random diffusers-named weights for {@code config}; the caller closes them. */
    public static Map<String, Tensor> randomWeights(HiDreamConfig config, long seed, DType dtype) {
        return RandomWeights.generate(parameterShapes(config), seed, dtype);
    }

    /** Builds the model from diffusers-named tensors; fails on missing, mis-shaped or unexpected tensors. */
    public static HiDreamTransformer fromStateDict(StateDict weights, HiDreamConfig c, DType compute) {
        return Modules.loadingModel(weights, compute, false, (sd, built) -> {
            long d = c.innerDim();
            Linear x = Modules.track(built, Linear.load(sd, "x_embedder.proj", c.patchFeatures(), d, compute));
            MlpEmbedder t = Modules.track(built, MlpEmbedder.load(sd, "t_embedder.timestep_embedder", 256, d, compute));
            MlpEmbedder p = Modules.track(built, MlpEmbedder.load(sd, "p_embedder.pooled_embedder", c.textEmbDim(), d, compute));
            List<HiDreamBlock> doubles = new ArrayList<>(), singles = new ArrayList<>();
            for (int i = 0; i < c.numLayers(); i++) {
                doubles.add(Modules.track(built, HiDreamBlock.load(sd, "double_stream_blocks." + i + ".block.", c, true, compute)));
            }
            for (int j = 0; j < c.numSingleLayers(); j++) {
                singles.add(Modules.track(built, HiDreamBlock.load(sd, "single_stream_blocks." + j + ".block.", c, false, compute)));
            }
            Linear finalAdaLN = Modules.track(built, Linear.load(sd, "final_layer.adaLN_modulation.1", d, 2 * d, compute));
            Linear finalLinear = Modules.track(built, Linear.load(sd, "final_layer.linear", d,
                    (long) c.patchSize() * c.patchSize() * c.outChannels(), compute));
            List<Linear> captions = new ArrayList<>();
            for (int i = 0; i <= c.totalBlocks(); i++) {
                long in = i < c.totalBlocks() ? c.llamaChannels() : c.t5Channels();
                captions.add(Modules.track(built, Linear.loadNoBias(sd, "caption_projection." + i + ".linear", in, d, compute)));
            }
            sd.requireAllTaken();
            return new HiDreamTransformer(c, compute, sd.device(), x, t, p, List.copyOf(doubles), List.copyOf(singles), finalAdaLN,
                    finalLinear, List.copyOf(captions));
        });
    }

    public HiDreamConfig config() { return config; }
    public DType dtype() { return dtype; }
    public DeviceSpec device() { return device; }

    /** Blocks counted with the global guidance counter: double then single blocks. */
    public int numGuidedBlocks() {
        return config.totalBlocks();
    }

    private Tensor place(Tensor t) {
        return device.isCpu() ? t.to(dtype.scalarType()) : io.mmdit4j.runtime.Transfers.to(t, device, dtype.scalarType()); // counted when it moves
    }

    // ---------------------------------------------------------------- conditioning

    /** {@code temb = t_embedder(Timesteps(256)(t)) + p_embedder(pooled)} [B, D]; timesteps as the pipeline passes them (σ·1000). */
    public Tensor temb(Tensor timesteps, Tensor pooled) {
        Tensor t = t_embedder.forward(Timesteps.sinusoidal(device.isCpu() ? timesteps : io.mmdit4j.runtime.Transfers.to(timesteps, device, ScalarType.Float), 256)
                .to(dtype.scalarType()));
        return t.add(p_embedder.forward(place(pooled)));
    }

    /** A guidance direction {@code p_embedder(pooled+) − p_embedder(pooled−)}, [R, D]; owned by the caller. */
    public Tensor guidanceDelta(Tensor pooledPos, Tensor pooledNeg) {
        return p_embedder.direction(pooledPos, pooledNeg, this::place);
    }

    // ---------------------------------------------------------------- per-request state

    /**
     * The projected text of one request, reused by every step: each block's Llama tokens
     * {@code caption_projection[i](llama[llama_layers[i]])} [B, Ll, D] and the initial text stream
     * {@code [T5 projection; last block's Llama tokens]} [B, Lt + Ll, D].
     */
    public static final class Text implements AutoCloseable {
        private final List<Tensor> llama;
        private final Tensor initial;

        private Text(List<Tensor> llama, Tensor initial) {
            this.llama = llama;
            this.initial = initial;
        }

        public long batch() { return initial.size(0); }
        public long textLength() { return initial.size(1); }
        public long llamaLength() { return llama.get(0).size(1); }
        public Tensor llama(int block) { return llama.get(block); }
        public Tensor initial() { return initial; }

        @Override
        public void close() {
            llama.forEach(Native::release);
            Native.release(initial);
        }
    }

    /**
     * Projects the text inputs: {@code t5 [B, Lt, caption_channels[0]]} (T5's last hidden state) and {@code llama
     * [N, B, Ll, caption_channels[1]]} (Llama's {@code hidden_states[1:]} stacked, N at least {@link HiDreamConfig#llamaStatesNeeded}).
     */
    public Text text(Tensor t5, Tensor llama) {
        checkText(t5, llama, -1);
        try (InferenceMode guard = new InferenceMode(); PointerScope scope = new PointerScope()) {
            long b = t5.size(0);
            List<Tensor> out = new ArrayList<>();
            try {
                Tensor states = place(llama);
                for (int i = 0; i < config.totalBlocks(); i++) {
                    Tensor layer = states.select(0, config.llamaLayers().get(i));
                    Linear projection = caption_projection.get(i);
                    out.add(Scopes.owned(() -> projection.forward(layer).view(b, -1, config.innerDim())));
                }
                Tensor t5p = caption_projection.get(config.totalBlocks()).forward(place(t5)).view(b, -1, config.innerDim());
                Tensor initial = Tensors.keep(cat(new TensorVector(t5p, out.get(out.size() - 1)), 1));
                return new Text(List.copyOf(out), initial);
            } catch (RuntimeException e) {
                out.forEach(Native::release);
                throw e;
            }
        }
    }

    /**
     * The token layout of a latent size and text lengths, reused by every step: image tokens ({@code max_seq} when
     * padded), the key masks of double and single blocks (null for square latents) and the RoPE table of the joint
     * sequence {@code [image; T5; Llama(last); Llama(block)]}.
     */
    public final class Layout implements AutoCloseable {
        final int latentH, latentW, patchH, patchW, imageTokens;
        final long textLength, llamaLength;
        final Tensor doubleMask; // [1, S, 1] or null
        final Tensor singleMask; // [1, S + T + Ll, 1] or null
        final Rope rope;

        private Layout(int latentH, int latentW, long textLength, long llamaLength) {
            int p = config.patchSize();
            this.latentH = latentH;
            this.latentW = latentW;
            this.patchH = latentH / p;
            this.patchW = latentW / p;
            boolean padded = latentH != latentW;
            int real = patchH * patchW;
            this.imageTokens = padded ? config.maxSeq() : real;
            this.textLength = textLength;
            this.llamaLength = llamaLength;
            try (PointerScope scope = new PointerScope()) {
                long total = imageTokens + textLength + llamaLength;
                float[] ids = new float[(int) total * 3];
                for (int r = 0; r < patchH; r++) {
                    for (int c = 0; c < patchW; c++) {
                        int t = r * patchW + c;
                        ids[3 * t + 1] = r;
                        ids[3 * t + 2] = c;
                    }
                }
                int[] axes = config.axesDimsRope().stream().mapToInt(Integer::intValue).toArray();
                this.rope = Rope.build(Tensors.fromFloats(ids, total, 3), axes, HiDreamConfig.ROPE_THETA, device);
                if (padded) {
                    TensorOptions o = new TensorOptions(dtype.scalarType());
                    Tensor m = zeros(new long[] {1, imageTokens, 1}, o);
                    m.narrow(1, 0, real).fill_(new org.bytedeco.pytorch.Scalar(1.0));
                    Tensor single = cat(new TensorVector(m, ones(new long[] {1, textLength + llamaLength, 1}, o)), 1);
                    this.doubleMask = Native.keep(onDevice(m));
                    this.singleMask = Native.keep(onDevice(single));
                } else {
                    this.doubleMask = null;
                    this.singleMask = null;
                }
            }
        }

        private Tensor onDevice(Tensor t) {
            return device.isCpu() ? t : io.mmdit4j.runtime.Transfers.to(t, device, dtype.scalarType()); // counted when it moves
        }

        /** Image tokens of the sequence (with padding). */
        public int imageTokens() { return imageTokens; }

        /** Whether the latents are zero-padded to {@code max_seq} tokens (non-square). */
        public boolean padded() { return doubleMask != null; }

        public Rope rope() { return rope; }

        @Override
        public void close() {
            rope.close();
            Native.release(doubleMask);
            Native.release(singleMask);
        }
    }

    /** The layout of latents {@code [*, C, h, w]} with {@code textLength = Lt + Ll} text tokens and {@code llamaLength} per-block ones. */
    public Layout layout(int latentH, int latentW, long textLength, long llamaLength) {
        checkLatentSize(latentH, latentW);
        return new Layout(latentH, latentW, textLength, llamaLength);
    }

    // ---------------------------------------------------------------- forward

    /** Plain forward of the reference inputs (see {@link #forward(Tensor, Tensor, Tensor, Tensor, Tensor, ModulationGuidance, int, ConditioningObserver)}). */
    public Tensor forward(Tensor hiddenStates, Tensor timesteps, Tensor t5, Tensor llama, Tensor pooled) {
        return forward(hiddenStates, timesteps, t5, llama, pooled, ModulationGuidance.none(), 0, null);
    }

    /**
     * {@code HiDreamImageTransformer2DModel.forward} with modulation guidance.
     *
     * @param hiddenStates [B, C, h, w] latents (not patchified)
     * @param timesteps    [B] as the pipeline passes them (σ·1000; float or int64)
     * @param t5           [B, Lt, caption_channels[0]]
     * @param llama        [N, B, Ll, caption_channels[1]] stacked Llama {@code hidden_states[1:]}
     * @param pooled       [B, text_emb_dim] concatenated CLIP-L and CLIP-G {@code text_embeds}
     * @return the raw output [B, out_channels, h, w] in the compute dtype, owned by the caller
     */
    public Tensor forward(Tensor hiddenStates, Tensor timesteps, Tensor t5, Tensor llama, Tensor pooled, ModulationGuidance guidance, int step,
                          ConditioningObserver observer) {
        checkText(t5, llama, hiddenStates == null ? -1 : hiddenStates.size(0));
        checkLatents(hiddenStates);
        try (Text text = text(t5, llama);
             Layout layout = layout((int) hiddenStates.size(2), (int) hiddenStates.size(3), text.textLength(), text.llamaLength())) {
            return forward(hiddenStates, timesteps, text, pooled, layout, guidance, step, observer);
        }
    }

    /** The forward on a request's prepared {@link Text} and {@link Layout} (what the pipeline calls at every step). */
    public Tensor forward(Tensor hiddenStates, Tensor timesteps, Text text, Tensor pooled, Layout layout, ModulationGuidance guidance, int step,
                          ConditioningObserver observer) {
        checkLatents(hiddenStates);
        long b = hiddenStates.size(0);
        checkRows("timesteps", timesteps, 1, b);
        checkRows("pooled_embeds", pooled, 2, b);
        if (pooled.size(1) != config.textEmbDim()) throw shape("pooled_embeds", pooled, "[" + b + ", " + config.textEmbDim() + "]");
        if (text.batch() != b) throw new IllegalArgumentException("the text has " + text.batch() + " rows, the latents " + b);
        if (layout.latentH != hiddenStates.size(2) || layout.latentW != hiddenStates.size(3) || layout.textLength != text.textLength()
                || layout.llamaLength != text.llamaLength()) {
            throw new IllegalArgumentException("the layout was made for other latents or text lengths");
        }
        try (InferenceMode guard = new InferenceMode(); PointerScope scope = new PointerScope()) {
            guidance.validate((int) b, config.innerDim(), config.totalBlocks());
            Tensor temb = temb(timesteps, pooled);                                                      // [B, D]
            BlockConditioning cond = guidance.resolve(temb, step, config.totalBlocks());
            if (observer != null) observer.onConditioning(step, cond);
            Tensor x = null, ctx = null, h = null;
            try {
                x = Scopes.owned(() -> x_embedder.forward(patchify(place(hiddenStates), layout)));         // [B, S, D]
                ctx = Tensors.keep(text.initial().clone());                                                // [B, T, D]
                long t = text.textLength();
                for (int i = 0; i < double_stream_blocks.size(); i++) {
                    Tensor stream = ctx;
                    Tensor seqT = cat(new TensorVector(stream, text.llama(i)), 1);                         // [B, T + Ll, D]
                    Tensor[] o = double_stream_blocks.get(i).forwardDouble(x, seqT, cond.activated(i), layout.doubleMask, layout.rope);
                    seqT.close();
                    x.close();
                    ctx.close();
                    x = o[0];
                    ctx = Scopes.owned(() -> o[1].narrow(1, 0, t));
                    o[1].close();
                }
                Tensor image = x, stream = ctx;
                h = Scopes.owned(() -> cat(new TensorVector(image, stream), 1));                           // [B, S + T, D]
                long kept = h.size(1);
                x.close();
                ctx.close();
                x = null;
                ctx = null;
                for (int j = 0; j < single_stream_blocks.size(); j++) {
                    int index = config.numLayers() + j;
                    Tensor c = cond.activated(index);
                    HiDreamBlock block = single_stream_blocks.get(j);
                    h = Scopes.then(h, cur -> Scopes.owned(() -> {
                        Tensor seq = cat(new TensorVector(cur, text.llama(index)), 1);                    // [B, S + T + Ll, D]
                        Tensor out = block.forwardSingle(seq, c, layout.singleMask, layout.rope);
                        return Scopes.adopt(out).narrow(1, 0, kept);
                    }));
                }
                Tensor finalIn = h.narrow(1, 0, layout.imageTokens);
                TensorVector m = final_adaLN.forward(cond.finalActivated()).chunk(2, 1);                  // shift, scale
                Tensor out = final_linear.forward(Ops.layerNormModulate(finalIn, 1e-6, m.get(0), m.get(1)));
                return Tensors.keep(unpatchify(out, layout, b));
            } finally {
                Native.release(x);
                Native.release(ctx);
                Native.release(h);
            }
        }
    }

    /** {@code [B, C, h, w] -> [B, S, p²·C]} (feature {@code (ph·p + pw)·C + c}), zero-padded to {@code max_seq} tokens when non-square. */
    private Tensor patchify(Tensor latents, Layout l) {
        long b = latents.size(0), ch = latents.size(1);
        int p = config.patchSize();
        Tensor tokens = latents.reshape(b, ch, l.patchH, p, l.patchW, p).permute(0, 2, 4, 3, 5, 1).reshape(b, (long) l.patchH * l.patchW, p * p * ch);
        if (!l.padded()) return tokens;
        Tensor padded = zeros(new long[] {b, l.imageTokens, p * p * ch}, tokens.options());
        padded.narrow(1, 0, (long) l.patchH * l.patchW).copy_(tokens);
        return padded;
    }

    /** The first {@code (h/p)·(w/p)} tokens {@code [B, S, p²·C]} back to {@code [B, C, h, w]}. */
    private Tensor unpatchify(Tensor tokens, Layout l, long b) {
        int p = config.patchSize();
        long c = tokens.size(2) / ((long) p * p);
        return tokens.narrow(1, 0, (long) l.patchH * l.patchW).reshape(b, l.patchH, l.patchW, p, p, c).permute(0, 5, 1, 3, 2, 4)
                .reshape(b, c, (long) l.patchH * p, (long) l.patchW * p);
    }

    // ---------------------------------------------------------------- checks

    private void checkLatentSize(int h, int w) {
        int p = config.patchSize();
        if (h < p || w < p || h % p != 0 || w % p != 0) {
            throw new IllegalArgumentException("latent size " + h + "x" + w + " must be positive multiples of the patch size " + p);
        }
        if (h != w && (h / p) * (w / p) > config.maxSeq()) {
            throw new IllegalArgumentException("non-square latents " + h + "x" + w + " give " + (h / p) * (w / p) + " tokens, more than max_seq "
                    + config.maxSeq() + " (max_resolution " + config.maxResolution() + ") they are padded to");
        }
    }

    private void checkLatents(Tensor x) {
        if (x == null || x.isNull()) throw new IllegalArgumentException("hidden_states is required");
        if (x.dim() != 4 || x.size(1) != config.inChannels()) {
            throw shape("hidden_states", x, "[B, " + config.inChannels() + ", h, w]");
        }
        checkLatentSize((int) x.size(2), (int) x.size(3));
    }

    /** Text inputs against the config (and a batch, when {@code batch >= 0}), before any native work. */
    private void checkText(Tensor t5, Tensor llama, long batch) {
        if (t5 == null || t5.isNull() || llama == null || llama.isNull()) throw new IllegalArgumentException("the T5 and Llama states are required");
        if (t5.dim() != 3 || t5.size(2) != config.t5Channels() || (batch >= 0 && t5.size(0) != batch)) {
            throw shape("encoder_hidden_states_t5", t5, "[" + (batch >= 0 ? batch : "B") + ", Lt, " + config.t5Channels() + "]");
        }
        if (llama.dim() != 4 || llama.size(1) != t5.size(0) || llama.size(3) != config.llamaChannels()) {
            throw shape("encoder_hidden_states_llama3", llama, "[N, " + t5.size(0) + ", Ll, " + config.llamaChannels() + "] (stacked Llama hidden_states[1:])");
        }
        if (llama.size(0) < config.llamaStatesNeeded()) {
            throw new IllegalArgumentException("encoder_hidden_states_llama3 holds " + llama.size(0) + " Llama hidden states, but llama_layers "
                    + "reads state " + (config.llamaStatesNeeded() - 1) + " (needs at least " + config.llamaStatesNeeded()
                    + "; give all of hidden_states[1:])");
        }
    }

    private static void checkRows(String name, Tensor t, int rank, long batch) {
        if (t == null || t.isNull()) throw new IllegalArgumentException(name + " is required");
        if (t.dim() != rank || t.size(0) != batch) throw shape(name, t, rank == 1 ? "[" + batch + "]" : "[" + batch + ", ...]");
    }

    private static IllegalArgumentException shape(String name, Tensor t, String expected) {
        return new IllegalArgumentException(name + " has shape " + Arrays.toString(Tensors.shape(t)) + ", expected " + expected);
    }

    // ---------------------------------------------------------------- statistics

    private static final String[] CHUNKS = {"shift_msa", "scale_msa", "gate_msa", "shift_mlp", "scale_mlp", "gate_mlp"};

    /** The adaLN modulation vectors every block computes from {@code cond}: double blocks' image and text streams, then single blocks. */
    public void modulations(BlockConditioning cond, ModulationVisitor visitor) {
        try (InferenceMode guard = new InferenceMode(); PointerScope scope = new PointerScope()) {
            for (int i = 0; i < config.totalBlocks(); i++) {
                boolean dual = i < config.numLayers();
                HiDreamBlock b = dual ? double_stream_blocks.get(i) : single_stream_blocks.get(i - config.numLayers());
                TensorVector m = b.modulation(cond.activated(i));
                for (int k = 0; k < 6; k++) visitor.accept(i, dual ? "img" : "single", CHUNKS[k], m.get(k));
                if (dual) for (int k = 0; k < 6; k++) visitor.accept(i, "txt", CHUNKS[k], m.get(6 + k));
            }
        }
    }

    @Override
    public void close() {
        Modules.closeAll(x_embedder, t_embedder, p_embedder, final_adaLN, final_linear);
        Modules.closeAll(double_stream_blocks);
        Modules.closeAll(single_stream_blocks);
        Modules.closeAll(caption_projection);
        Native.release(torchDevice);
    }
}
