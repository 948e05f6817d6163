package io.mmdit4j.cosmos;

import io.mmdit4j.guidance.BlockConditioning;
import io.mmdit4j.guidance.ConditioningObserver;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.io.RandomWeights;
import io.mmdit4j.io.StateDict;
import io.mmdit4j.io.TensorSource;
import io.mmdit4j.io.TransformerFiles;
import io.mmdit4j.nn.Linear;
import io.mmdit4j.nn.MlpEmbedder;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.nn.RmsNorm;
import io.mmdit4j.nn.Rope;
import io.mmdit4j.nn.Timesteps;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Scopes;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.InferenceMode;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.bytedeco.pytorch.global.torch.arange;
import static org.bytedeco.pytorch.global.torch.cat;
import static org.bytedeco.pytorch.global.torch.cos;
import static org.bytedeco.pytorch.global.torch.outer;
import static org.bytedeco.pytorch.global.torch.pow;
import static org.bytedeco.pytorch.global.torch.silu;
import static org.bytedeco.pytorch.global.torch.sin;
import static org.bytedeco.pytorch.global.torch.upsample_nearest2d;
import static org.bytedeco.pytorch.global.torch.where;
import static org.bytedeco.pytorch.global.torch.zeros;

/**
 * Cosmos-Predict2's {@code CosmosTransformer3DModel} (diffusers 0.35.2, text-to-image layout) with the modulation-guidance
 * paper's pooled-CLIP adapter ({@link PooledClipAdapter}, {@code CosmosWithPooledCLIP}) and modulation guidance as a
 * first-class argument.
 *
 * <pre>
 * x     = cat(latents, nearest-resized padding mask)                      17 channels, patched (1,2,2) → N tokens of D
 * temb  = t_embedder(sin(t)) [B, 3D]; embedded_timestep = RMSNorm(sin(t)) [B, D]; t = σ/(σ+1) as given (no ×1000)
 * block i: modulations = linear_2(linear_1(SiLU(embedded_timestep))) + temb_i  (shift, scale, gate per sub-layer)
 * temb_i = temb + scales[i]·pooled_emb_i   when block i takes the pooled term, else temb;  norm_out gets the plain temb
 * pooled_emb_i = TE(CLIP_pooled(p)) + Σ_terms w·f(i)·rowWeight·(TE(p+) − TE(p−))      (the guidance plan's offset of block i)
 * </pre>
 *
 * <b>Which blocks take the pooled term</b> is COSMOS's own rule (the reference's {@code i >= start_layer or w == 0}),
 * per batch row and denoising step: a row whose guidance reaches no block at this step (no guidance, {@code w = 0}, a row
 * weight of 0, a step outside the window) gets the pooled term in <em>every</em> block; a guided row gets it only in the
 * blocks its guidance reaches, so with {@code w ≠ 0} the blocks below the start layer lose the pooled term entirely.
 * The unconditional pass of classifier-free guidance follows the conditional pass's blocks without being guided: its
 * caller passes {@link #pooledBlocks} of the conditional plan. Without pooled projections (the reference's
 * {@code apply_clip_pooled=False}) or without an adapter, every block gets the plain {@code temb}.
 * Guidance blocks are the 0-based {@code transformer_blocks} indices.
 */
public final class CosmosTransformer implements AutoCloseable {
    private final CosmosConfig config;
    private final DType dtype;
    private final DeviceSpec device;
    private final Device torchDevice;

    final Linear patch_embed_proj;
    final MlpEmbedder time_embed_t_embedder; // linear_1 [D, D], linear_2 [3D, D], no biases
    final RmsNorm time_embed_norm;
    final List<CosmosBlock> transformer_blocks;
    final CosmosAdaLayerNorm norm_out;
    final Linear proj_out;
    private PooledClipAdapter adapter; // null: the base model

    private CosmosTransformer(CosmosConfig config, DType dtype, DeviceSpec device, Linear patch, MlpEmbedder t, RmsNorm norm,
                              List<CosmosBlock> blocks, CosmosAdaLayerNorm normOut, Linear projOut, PooledClipAdapter adapter) {
        this.config = config;
        this.dtype = dtype;
        this.device = device;
        this.torchDevice = Native.keep(device.torchDevice());
        this.patch_embed_proj = patch;
        this.time_embed_t_embedder = t;
        this.time_embed_norm = norm;
        this.transformer_blocks = blocks;
        this.norm_out = normOut;
        this.proj_out = projOut;
        this.adapter = adapter;
    }

    // ---------------------------------------------------------------- loading

    /** The base transformer, or the transformer of a wrapper file with its adapter; see {@link #load(Path, Path, DType, DeviceSpec)}. */
    public static CosmosTransformer load(Path model, DType compute, DeviceSpec device) {
        return load(model, null, compute, device);
    }

    /**
     * Loads the transformer from a diffusers {@code transformer/} folder (or a model folder holding one), or from one
     * file: diffusers-named tensors, or the reference's whole wrapper state dict ({@code transformer.} + every diffusers
     * key, plus the adapter keys; {@code .safetensors} or a {@code torch.save} archive). The configuration is the folder's
     * {@code config.json}, else detected from the tensors ({@link CosmosConfig#detect}).
     *
     * @param adapter the pooled-CLIP adapter: {@code pooled_adapter.safetensors}, the reference's {@code checkpoint_<step>.pt}
     *                ({@code torch.save}, read without executing it), or a whole wrapper state dict — whose transformer
     *                tensors then replace the folder's, as the reference's {@code load_state_dict(strict=False)} does. Null:
     *                only what the model file itself holds.
     */
    public static CosmosTransformer load(Path model, Path adapter, DType compute, DeviceSpec device) {
        DType.checkCompute(compute);
        device.requireAvailable();
        Path weights = TransformerFiles.transformerPath(model);
        List<TensorSource> sources = new ArrayList<>();
        try {
            TensorSource base = CosmosWeights.open(weights);
            sources.add(base);
            TensorSource extra = adapter == null ? null : CosmosWeights.open(adapter);
            if (extra != null) sources.add(extra);
            StateDict sd = CosmosWeights.merged(base, extra);
            Path json = TransformerFiles.configJson(weights);
            CosmosConfig c = json != null ? CosmosConfig.fromDiffusersConfig(json) : CosmosConfig.detect(sd);
            return fromStateDict(sd.onDevice(device), c, compute);
        } finally {
            sources.forEach(TensorSource::close); // loaded tensors keep their mappings alive on their own
        }
    }

    /** The configuration of a checkpoint from its config.json or its tensors; reads headers only. */
    public static CosmosConfig inspect(Path model) {
        Path weights = TransformerFiles.transformerPath(model);
        Path json = TransformerFiles.configJson(weights);
        if (json != null) return CosmosConfig.fromDiffusersConfig(json);
        try (TensorSource s = CosmosWeights.open(weights)) {
            return CosmosConfig.detect(CosmosWeights.merged(s, null));
        }
    }

    /** A shapes-only model on the meta device (with an adapter of pooled width {@code pooledDim}, or none when 0). */
    public static CosmosTransformer meta(CosmosConfig config, long pooledDim, DType compute) {
        StateDict rec = StateDict.recording("meta Cosmos " + config);
        CosmosTransformer t = fromStateDict(rec, config, compute);
        if (pooledDim > 0) t.adapter = CosmosWeights.recordAdapter(rec, config, pooledDim, compute);
        return t;
    }

    /** The parameter table (diffusers names and shapes, load order) of the base transformer. */
    public static Map<String, long[]> parameterShapes(CosmosConfig config) {
        return io.mmdit4j.io.ParameterShapes.of("Cosmos " + config, sd -> fromStateDict(sd, config, DType.F32));
    }

    /** A model with deterministic random weights (tests, demos, benchmarks). */
    public static CosmosTransformer random(CosmosConfig config, long seed, DType compute) {
        Map<String, Tensor> w = RandomWeights.generate(parameterShapes(config), seed, compute);
        try {
            return fromStateDict(RandomWeights.asStateDict("random Cosmos (seed " + seed + ")", w), config, compute);
        } finally {
            Tensors.closeAll(w.values());
        }
    }

    /**
     * Builds the model from diffusers-named tensors plus, when present, the adapter's ({@code scales},
     * {@code text_embedder_clip.*}); fails on missing, mis-shaped or unexpected tensors.
     */
    public static CosmosTransformer fromStateDict(StateDict weights, CosmosConfig c, DType compute) {
        return Modules.loadingModel(weights, compute, false, (sd, built) -> {
            long dim = c.innerDim();
            Linear patch = Modules.track(built, Linear.loadNoBias(sd, "patch_embed.proj", c.patchInputs(), dim, compute));
            Linear t1 = Modules.track(built, Linear.loadNoBias(sd, "time_embed.t_embedder.linear_1", dim, dim, compute));
            Linear t2 = Modules.track(built, Linear.loadNoBias(sd, "time_embed.t_embedder.linear_2", dim, 3 * dim, compute));
            RmsNorm norm = Modules.track(built, RmsNorm.load(sd, "time_embed.norm.weight", dim, 1e-6, compute));
            List<CosmosBlock> blocks = new ArrayList<>();
            for (int i = 0; i < c.numLayers(); i++) blocks.add(Modules.track(built, CosmosBlock.load(sd, "transformer_blocks." + i + ".", c, compute)));
            CosmosAdaLayerNorm normOut = Modules.track(built, CosmosAdaLayerNorm.load(sd, "norm_out", dim, c.adalnLoraDim(), 2, compute));
            Linear projOut = Modules.track(built, Linear.loadNoBias(sd, "proj_out", dim, c.patchOutputs(), compute));
            PooledClipAdapter adapter = !sd.isRecording() && PooledClipAdapter.present(sd)
                    ? Modules.track(built, PooledClipAdapter.load(sd, c.numLayers(), c.conditioningDim(), compute)) : null;
            sd.requireAllTaken();
            return new CosmosTransformer(c, compute, sd.device(), patch, new MlpEmbedder(t1, t2), norm, List.copyOf(blocks), normOut, projOut, adapter);
        });
    }

    public CosmosConfig config() { return config; }
    public DType dtype() { return dtype; }
    public DeviceSpec device() { return device; }

    /** Guidance blocks: the {@code transformer_blocks} (0-based). */
    public int numGuidedBlocks() { return config.numLayers(); }

    /** The pooled-CLIP adapter, or null for the base model. */
    public PooledClipAdapter adapter() { return adapter; }

    /**
     * Installs {@code next} (owned by this model from now; null removes the adapter) and returns the previous adapter, whose
     * ownership passes to the caller. Training swaps its trainable adapter in this way; not while a forward runs.
     */
    public PooledClipAdapter replaceAdapter(PooledClipAdapter next) {
        if (next != null && (next.numBlocks() != config.numLayers() || next.conditioningDim() != config.conditioningDim())) {
            throw new IllegalArgumentException("adapter with scales [" + next.numBlocks() + ", " + next.conditioningDim() + "] for a model with "
                    + config.numLayers() + " blocks of conditioning width " + config.conditioningDim());
        }
        PooledClipAdapter old = adapter;
        adapter = next;
        return old;
    }

    /** The width of the pooled projections the adapter takes (0 without an adapter). */
    public long pooledDim() {
        return adapter == null ? 0 : adapter.pooledDim();
    }

    private Tensor place(Tensor t) {
        return device.isCpu() ? t.to(dtype.scalarType()) : io.mmdit4j.runtime.Transfers.to(t, device, dtype.scalarType()); // counted when it moves
    }

    private Tensor onDevice(Tensor t) {
        return device.isCpu() ? t : io.mmdit4j.runtime.Transfers.to(t, device); // counted when it moves
    }

    // ---------------------------------------------------------------- conditioning

    /**
     * A guidance direction {@code TE(pooled+) − TE(pooled−)} [R, 3D] through the adapter's {@code text_embedder_clip};
     * owned by the caller (or the plan it is given to).
     */
    public Tensor guidanceDelta(Tensor pooledPos, Tensor pooledNeg) {
        if (adapter == null) {
            throw new IllegalArgumentException("this COSMOS transformer has no pooled-CLIP adapter: modulation guidance needs one "
                    + "(load it with the adapter file, e.g. pooled_adapter.safetensors or checkpoint_<step>.pt)");
        }
        return adapter.direction(pooledPos, pooledNeg, this::place);
    }

    /**
     * {@code (temb [B, 3D], embedded_timestep [B, D])} of timesteps {@code t} (as given, no ×1000), owned by the caller:
     * {@code temb = t_embedder(sin(t))}, {@code embedded_timestep = RMSNorm(sin(t))}.
     */
    public Tensor[] timeEmbedding(Tensor timestep) {
        try (InferenceMode guard = new InferenceMode(); PointerScope scope = new PointerScope()) {
            Tensor proj = Timesteps.sinusoidal(onDevice(timestep), (int) config.innerDim()).to(dtype.scalarType());
            return new Tensor[] {Tensors.keep(time_embed_t_embedder.forward(proj)), Tensors.keep(time_embed_norm.forward(proj))};
        }
    }

    /**
     * The reference's rule for which blocks of which rows take the pooled term at step {@code step} ({@code [block][row]}):
     * a row that the plan guides somewhere at this step takes it in the blocks the plan reaches, any other row in every
     * block. The unconditional pass of CFG passes the conditional plan's result to {@link #forward}.
     */
    public static boolean[][] pooledBlocks(ModulationGuidance guidance, int step, int batch, int numBlocks) {
        boolean[][] reach = guidance.reach(step, batch, numBlocks);
        boolean[][] out = new boolean[numBlocks][batch];
        for (int b = 0; b < batch; b++) {
            boolean guided = false;
            for (int l = 0; l < numBlocks; l++) guided |= reach[l][b];
            for (int l = 0; l < numBlocks; l++) out[l][b] = !guided || reach[l][b];
        }
        return out;
    }

    /**
     * The 3-D RoPE of a latent patch grid ({@code CosmosRotaryPosEmbed}, images: fps None): per axis
     * {@code θ_a = 10000·rope_scale_a^(d_a/(d_a−2))}, {@code d_h = d_w = (Dh/6)·2}, {@code d_t = Dh − 2·d_h}, frequencies and
     * angles in fp32, positions 0.. per axis in (t, h, w) row-major order, cos/sin of {@code cat([t, h, w] × 2)}: a
     * rotate-half table.
     */
    private Rope ropeCache;       // the table of the last grid (built on the host, moved once), shared by every step
    private long[] ropeCacheGrid;

    /**
     * Builds (and moves to the device) the RoPE table of latents {@code [B, C, F, H, W]} now, before a denoising loop, so
     * that no step builds or moves one; the forwards then share it.
     */
    public void prepareRope(long[] latentShape) {
        int[] p = config.patchSize();
        cachedRope(latentShape[2] / p[0], latentShape[3] / p[1], latentShape[4] / p[2]).close();
    }

    /** {@link #rope} of this grid, built once and reused while the grid stays the same: no table is moved per step. */
    private synchronized Rope cachedRope(long frames, long height, long width) {
        long[] grid = {frames, height, width};
        if (ropeCache == null || !Arrays.equals(grid, ropeCacheGrid)) {
            Rope fresh = rope(frames, height, width);
            if (ropeCache != null) ropeCache.close();
            ropeCache = fresh;
            ropeCacheGrid = grid;
        }
        return ropeCache.share();
    }

    public Rope rope(long frames, long height, long width) {
        int dh = config.attentionHeadDim();
        int dimH = dh / 6 * 2, dimW = dimH, dimT = dh - dimH - dimW;
        int[] p = config.patchSize(), max = config.maxSize();
        long[] grid = {frames, height, width};
        for (int a = 0; a < 3; a++) {
            long limit = Math.max(max[0] / p[0], Math.max(max[1] / p[1], max[2] / p[2]));
            if (grid[a] < 1 || grid[a] > limit) {
                throw new IllegalArgumentException("latent patch grid " + frames + "x" + height + "x" + width + " is outside this model's RoPE range "
                        + "(max_size " + Arrays.toString(max) + " / patch " + Arrays.toString(p) + ")");
            }
        }
        double[] scale = config.ropeScale();
        try (PointerScope scope = new PointerScope()) {
            TensorOptions f32 = new TensorOptions(ScalarType.Float);
            Tensor ft = axisFreqs(dimT, scale[0], f32), fh = axisFreqs(dimH, scale[1], f32), fw = axisFreqs(dimW, scale[2], f32);
            Tensor et = outer(arange(new Scalar(frames), f32), ft).view(frames, 1, 1, dimT / 2).expand(frames, height, width, dimT / 2);
            Tensor eh = outer(arange(new Scalar(height), f32), fh).view(1, height, 1, dimH / 2).expand(frames, height, width, dimH / 2);
            Tensor ew = outer(arange(new Scalar(width), f32), fw).view(1, 1, width, dimW / 2).expand(frames, height, width, dimW / 2);
            Tensor freqs = cat(new TensorVector(et, eh, ew, et, eh, ew), -1).reshape(frames * height * width, dh);
            Tensor c = cos(freqs), s = sin(freqs);
            if (!device.isCpu()) {
                c = io.mmdit4j.runtime.Transfers.to(c, device, ScalarType.Float); // once per request (the pipeline builds the table before the loop)
                s = io.mmdit4j.runtime.Transfers.to(s, device, ScalarType.Float);
            }
            return Rope.halves(Tensors.keep(c), Tensors.keep(s));
        }
    }

    /** {@code 1 / (θ^(arange(0, d, 2)[:d/2] / d))} in fp32 with {@code θ = 10000·scale^(d/(d−2))} (NTK). */
    private static Tensor axisFreqs(int d, double scale, TensorOptions f32) {
        double theta = 10000.0 * Math.pow(scale, (double) d / (d - 2));
        Tensor range = arange(new Scalar(0), new Scalar(d), new Scalar(2), f32).narrow(0, 0, d / 2).div(new Scalar((double) d));
        return pow(new Scalar(theta), range).reciprocal();
    }

    // ---------------------------------------------------------------- forward

    /** One forward without guidance (every block takes the pooled term when {@code pooled} is given). */
    public Tensor forward(Tensor hidden, Tensor timestep, Tensor text, Tensor pooled) {
        return forward(hidden, timestep, text, null, pooled, ModulationGuidance.none(), 0, null, null);
    }

    public Tensor forward(Tensor hidden, Tensor timestep, Tensor text, Tensor pooled, ModulationGuidance g, int step) {
        return forward(hidden, timestep, text, null, pooled, g, step, null, null);
    }

    /**
     * One transformer call.
     *
     * @param hidden       latents {@code [B, C, F, H, W]} as the sampler passes them ({@code x·(1−t)})
     * @param timestep     {@code [B]} {@code t = σ/(σ+1)} in [0, 1), used as given
     * @param text         T5 states {@code [B, L, text_embed_dim]} (rows past the prompt zero; no mask)
     * @param paddingMask  {@code [1 or B, 1, H', W']} resized (nearest) to the latent size, or null for zeros (what the sampler
     *                     passes)
     * @param pooled       CLIP pooled projections {@code [B, P]}, or null for no pooled term
     * @param g            modulation guidance (deltas {@code [1 or B, 3D]} from {@link #guidanceDelta})
     * @param step         denoising step, for step windows
     * @param pooledBlocks {@code [block][row]}: which blocks of each row take the pooled term, or null for the rule applied
     *                     to {@code g} ({@link #pooledBlocks(ModulationGuidance, int, int, int)})
     * @param observer     sees the vector each block receives ({@link BlockConditioning#vector}), or null
     * @return {@code [B, C_out, F, H, W]} in the compute dtype, owned by the caller
     */
    public Tensor forward(Tensor hidden, Tensor timestep, Tensor text, Tensor paddingMask, Tensor pooled, ModulationGuidance g, int step,
                          boolean[][] pooledBlocks, ConditioningObserver observer) {
        try (InferenceMode guard = new InferenceMode()) {
            return forwardInternal(hidden, timestep, text, paddingMask, pooled, g, step, pooledBlocks, observer);
        }
    }

    /**
     * {@link #forward} with autograd on (no inference mode): gradients reach whatever tensors require them (the adapter's,
     * when training it). The caller decides the grad mode.
     */
    public Tensor forwardWithGrad(Tensor hidden, Tensor timestep, Tensor text, Tensor pooled) {
        return forwardInternal(hidden, timestep, text, null, pooled, ModulationGuidance.none(), 0, null, null);
    }

    private Tensor forwardInternal(Tensor hidden, Tensor timestep, Tensor text, Tensor paddingMask, Tensor pooled, ModulationGuidance g, int step,
                                   boolean[][] pooledBlocks, ConditioningObserver observer) {
        validate(hidden, timestep, text, paddingMask, pooled);
        int b = (int) hidden.size(0), layers = config.numLayers();
        int[] p = config.patchSize();
        long frames = hidden.size(2) / p[0], rows = hidden.size(3) / p[1], cols = hidden.size(4) / p[2];
        if (pooledBlocks != null && (pooledBlocks.length != layers || Arrays.stream(pooledBlocks).anyMatch(r -> r.length != b))) {
            throw new IllegalArgumentException("pooledBlocks must be [" + layers + "][" + b + "]");
        }
        try (PointerScope scope = new PointerScope()) {
            g.validate(b, config.conditioningDim(), layers);
            Tensor ctx = place(text);
            Tensor proj = Timesteps.sinusoidal(onDevice(timestep), (int) config.innerDim()).to(dtype.scalarType()); // [B,D]
            Tensor temb = time_embed_t_embedder.forward(proj);                                                       // [B,3D]
            Tensor activatedTimestep = silu(time_embed_norm.forward(proj));                                          // [B,D]
            Tensor[] vectors = blockVectors(temb, pooled, g, step, pooledBlocks);
            if (observer != null) observer.onConditioning(step, BlockConditioning.of(temb, vectors, temb, offsetsOf(vectors, temb)));
            Tensor x = null;
            try (Rope table = cachedRope(frames, rows, cols)) {
                x = Scopes.owned(() -> patchEmbed(hidden, paddingMask));                                           // [B,N,D]
                for (int i = 0; i < layers; i++) {
                    CosmosBlock block = transformer_blocks.get(i);
                    Tensor v = vectors[i];
                    x = Scopes.then(x, h -> block.forwardOwned(h, ctx, activatedTimestep, v, table));
                }
                Tensor h = x;
                TensorVector m = norm_out.modulation(activatedTimestep, temb);
                Tensor out = proj_out.forward(CosmosAdaLayerNorm.modulate(h, m.get(0), m.get(1)));                  // [B,N,pt·ph·pw·C]
                return Tensors.keep(unpatchify(out, b, frames, rows, cols));
            } finally {
                Native.release(x);
            }
        }
    }

    /** The vector each block receives (see the class comment); tensors of the caller's scope. */
    private Tensor[] blockVectors(Tensor temb, Tensor pooled, ModulationGuidance g, int step, boolean[][] pooledBlocks) {
        int layers = config.numLayers(), b = (int) temb.size(0);
        Tensor[] vectors = new Tensor[layers];
        Arrays.fill(vectors, temb);
        if (pooled == null || adapter == null) return vectors;
        Tensor te = adapter.embed(place(pooled));                                    // [B,3D]
        BlockConditioning pc = g.resolve(te, step, layers);                          // vector(i) = te + offset_i
        boolean[][] gate = pooledBlocks != null ? pooledBlocks : pooledBlocks(g, step, b, layers);
        Tensor scales = adapter.scales();
        for (int i = 0; i < layers; i++) {
            int on = 0;
            for (boolean r : gate[i]) on += r ? 1 : 0;
            if (on == 0) continue;
            Tensor withPooled = temb.add(scales.select(0, i).mul(pc.vector(i)));  // temb + scales[i]·pooled_emb
            if (on == b) {
                vectors[i] = withPooled;
            } else {
                boolean[] rows = gate[i];
                float[] mask = new float[b];
                for (int r = 0; r < b; r++) mask[r] = rows[r] ? 1f : 0f;
                Tensor sel = (temb.is_cpu() ? Tensors.fromFloats(mask, b, 1) : Tensors.columnOn(mask, temb)).gt(new Scalar(0.5)); // no copy
                vectors[i] = where(sel, withPooled, temb);
            }
        }
        return vectors;
    }

    private static Tensor[] offsetsOf(Tensor[] vectors, Tensor temb) {
        Tensor[] out = new Tensor[vectors.length];
        for (int i = 0; i < vectors.length; i++) out[i] = vectors[i] == temb ? null : vectors[i].sub(temb);
        return out;
    }

    /** cat(latents, mask channel) → patches (c, p_t, p_h, p_w) → Linear → [B, N, D]. */
    private Tensor patchEmbed(Tensor hidden, Tensor paddingMask) {
        Tensor x = place(hidden);
        long b = x.size(0), f = x.size(2), h = x.size(3), w = x.size(4);
        if (config.concatPaddingMask()) {
            Tensor m;
            if (paddingMask == null) {
                m = zeros(new long[] {b, 1, f, h, w}, new TensorOptions(dtype.scalarType()).device(new org.bytedeco.pytorch.DeviceOptional(torchDevice)));
            } else {
                Tensor resized = x.is_meta() ? place(paddingMask) : upsample_nearest2d(place(paddingMask), new long[] {h, w}, new DoubleOptional(), new DoubleOptional());
                m = resized.unsqueeze(2).expand(new long[] {b, 1, f, h, w}, false);
            }
            x = cat(new TensorVector(x, m), 1);
        }
        int[] p = config.patchSize();
        long c = x.size(1);
        Tensor patches = x.reshape(b, c, f / p[0], p[0], h / p[1], p[1], w / p[2], p[2]).permute(0, 2, 4, 6, 1, 3, 5, 7)
                .reshape(b, (f / p[0]) * (h / p[1]) * (w / p[2]), c * p[0] * p[1] * p[2]);
        return patch_embed_proj.forward(patches);
    }

    /** {@code [B, N, p_h·p_w·p_t·C]} with features ordered (p_h, p_w, p_t, c) → {@code [B, C, F, H, W]}. */
    private Tensor unpatchify(Tensor y, long b, long frames, long rows, long cols) {
        int[] p = config.patchSize();
        int c = config.outChannels();
        return y.reshape(b, frames, rows, cols, p[1], p[2], p[0], c).permute(0, 7, 1, 6, 2, 4, 3, 5)
                .reshape(b, c, frames * p[0], rows * p[1], cols * p[2]);
    }

    private void validate(Tensor hidden, Tensor timestep, Tensor text, Tensor paddingMask, Tensor pooled) {
        if (hidden == null || timestep == null || text == null) throw new IllegalArgumentException("hidden, timestep and text are required");
        int[] p = config.patchSize();
        if (hidden.dim() != 5 || hidden.size(1) != config.inChannels()) {
            throw new IllegalArgumentException("hidden states have shape " + Tensors.shapeString(hidden) + ", expected [B, " + config.inChannels() + ", F, H, W]");
        }
        if (hidden.size(0) < 1 || hidden.size(2) < 1 || hidden.size(2) % p[0] != 0 || hidden.size(3) < p[1] || hidden.size(3) % p[1] != 0
                || hidden.size(4) < p[2] || hidden.size(4) % p[2] != 0) {
            throw new IllegalArgumentException("hidden states have shape " + Tensors.shapeString(hidden) + ": frames, height and width must be positive multiples of "
                    + "the patch size " + Arrays.toString(p));
        }
        long b = hidden.size(0);
        Tensors.requireShape("timestep", timestep, b);
        if (text.dim() != 3 || text.size(0) != b || text.size(2) != config.textEmbedDim() || text.size(1) < 1) {
            throw new IllegalArgumentException("text (T5) states have shape " + Tensors.shapeString(text) + ", expected [" + b + ", L, " + config.textEmbedDim() + "]");
        }
        if (paddingMask != null && (paddingMask.dim() != 4 || (paddingMask.size(0) != 1 && paddingMask.size(0) != b) || paddingMask.size(1) != 1)) {
            throw new IllegalArgumentException("padding mask has shape " + Tensors.shapeString(paddingMask) + ", expected [1, 1, H, W]");
        }
        if (pooled != null && adapter != null) Tensors.requireShape("pooled projections", pooled, b, adapter.pooledDim());
        if (pooled != null && adapter == null && pooled.dim() != 2) {
            throw new IllegalArgumentException("pooled projections have shape " + Tensors.shapeString(pooled) + ", expected [" + b + ", P]");
        }
    }

    @Override
    public void close() {
        Modules.closeAll(patch_embed_proj, time_embed_t_embedder, time_embed_norm, norm_out, proj_out, adapter);
        Modules.closeAll(transformer_blocks);
        synchronized (this) {
            if (ropeCache != null) ropeCache.close();
            ropeCache = null;
        }
        Native.release(torchDevice);
    }
}
