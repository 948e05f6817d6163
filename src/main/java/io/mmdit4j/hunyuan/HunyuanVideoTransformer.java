package io.mmdit4j.hunyuan;

import io.mmdit4j.guidance.BlockConditioning;
import io.mmdit4j.guidance.ConditioningObserver;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.io.RandomWeights;
import io.mmdit4j.io.StateDict;
import io.mmdit4j.io.TransformerFiles;
import io.mmdit4j.nn.AdaLayerNormContinuous;
import io.mmdit4j.nn.Linear;
import io.mmdit4j.nn.MlpEmbedder;
import io.mmdit4j.nn.Modules;
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
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarTypeOptional;
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
import static org.bytedeco.pytorch.global.torch.ones;

/**
 * HunyuanVideo transformer ({@code HunyuanVideoTransformer3DModel}, text-to-video) with modulation guidance as a
 * first-class argument: every dual- and single-stream block gets its own conditioning vector from a
 * {@link ModulationGuidance} plan (global block index: dual blocks first, then single blocks); the final norm and
 * the token refiner keep their plain conditioning. Loads diffusers {@code transformer/} folders and original
 * HunyuanVideo checkpoints (see {@link HunyuanVideoKeyMap}).
 *
 * <p>Inputs follow {@code HunyuanVideoPipeline}: the timestep is {@code σ·1000} and the guidance
 * {@code guidance_scale·1000}, both used as given (no scaling inside; the caller chooses their dtype, e.g. bf16
 * rounding of the guidance, MODEL-SPEC H.2).
 */
public final class HunyuanVideoTransformer implements AutoCloseable {
    private final HunyuanVideoConfig config;
    private final DType dtype;
    private final DeviceSpec device;
    private final Device torchDevice;

    final HunyuanVideoPatchEmbed x_embedder;
    final HunyuanVideoTokenRefiner context_embedder;
    final MlpEmbedder time_text_embed_timestep_embedder;
    final MlpEmbedder time_text_embed_guidance_embedder; // null without guidance_embeds
    final MlpEmbedder time_text_embed_text_embedder;
    final List<HunyuanVideoDualBlock> transformer_blocks;
    final List<HunyuanVideoSingleBlock> single_transformer_blocks;
    final AdaLayerNormContinuous norm_out;
    final Linear proj_out;
    private final Map<String, Linear> linears; // every Linear under its diffusers name, as loaded
    private final io.mmdit4j.nn.BlockOffload offload; // none unless loaded with offloadBlocks on an accelerator

    private HunyuanVideoTransformer(HunyuanVideoConfig config, DType dtype, DeviceSpec device, HunyuanVideoPatchEmbed x_embedder,
                                    HunyuanVideoTokenRefiner context_embedder, MlpEmbedder timestep, MlpEmbedder guidance, MlpEmbedder text,
                                    List<HunyuanVideoDualBlock> duals, List<HunyuanVideoSingleBlock> singles, AdaLayerNormContinuous norm_out,
                                    Linear proj_out, Map<String, Linear> linears, boolean offloadBlocks) {
        this.config = config;
        this.dtype = dtype;
        this.device = device;
        this.torchDevice = Native.keep(device.torchDevice());
        this.x_embedder = x_embedder;
        this.context_embedder = context_embedder;
        this.time_text_embed_timestep_embedder = timestep;
        this.time_text_embed_guidance_embedder = guidance;
        this.time_text_embed_text_embedder = text;
        this.transformer_blocks = duals;
        this.single_transformer_blocks = singles;
        this.norm_out = norm_out;
        this.proj_out = proj_out;
        this.linears = linears;
        this.offload = offloadBlocks ? io.mmdit4j.nn.BlockOffload.of(linears, device) : io.mmdit4j.nn.BlockOffload.none();
    }

    // ---------------------------------------------------------------- loading

    /** Loads a diffusers transformer folder (or a model folder with {@code transformer/}), or an original checkpoint file. */
    public static HunyuanVideoTransformer load(Path path, DType compute, DeviceSpec device) {
        return load(path, compute, device, null);
    }

    /**
     * @param ropeAxesDim RoPE axis widths for original checkpoints (not stored in the weights); null for HunyuanVideo's
     *                    split of the head dimension. A diffusers folder takes them from its config.json.
     */
    public static HunyuanVideoTransformer load(Path path, DType compute, DeviceSpec device, int[] ropeAxesDim) {
        return load(path, compute, device, ropeAxesDim, false);
    }

    /** As {@link #load(Path, DType, DeviceSpec, int[])}; {@code offloadBlocks}: see {@link #fromStateDict(StateDict, HunyuanVideoConfig, DType, boolean)}. */
    public static HunyuanVideoTransformer load(Path path, DType compute, DeviceSpec device, int[] ropeAxesDim, boolean offloadBlocks) {
        DType.checkCompute(compute);
        device.requireAvailable();
        return TransformerFiles.read(path, HunyuanVideoTransformer::diffusersNamed,
                (weights, sd) -> fromStateDict(sd.onDevice(device), config(weights, sd, ropeAxesDim), compute, offloadBlocks));
    }

    public static HunyuanVideoTransformer load(Path path, DType compute) {
        return load(path, compute, DeviceSpec.CPU);
    }

    /** The configuration of a checkpoint from its config.json or its tensor names and shapes; reads headers only. */
    public static HunyuanVideoConfig inspect(Path path) {
        return TransformerFiles.read(path, HunyuanVideoTransformer::diffusersNamed, (weights, sd) -> config(weights, sd, null));
    }

    private static StateDict diffusersNamed(StateDict sd) {
        return HunyuanVideoKeyMap.isOriginal(sd) ? HunyuanVideoKeyMap.fromOriginal(sd) : sd;
    }

    private static HunyuanVideoConfig config(Path weights, StateDict sd, int[] ropeAxesDim) {
        Path json = TransformerFiles.configJson(weights);
        if (json != null) return HunyuanVideoConfig.fromDiffusersConfig(json);
        return HunyuanVideoConfig.detect(sd, ropeAxesDim);
    }

    /** A model with deterministic random weights ({@link RandomWeights}): tests, demos and benchmarks at any size. */
    public static HunyuanVideoTransformer random(HunyuanVideoConfig config, long seed, DType compute) {
        Map<String, Tensor> weights = RandomWeights.generate(HunyuanVideoParameters.shapes(config), seed, compute);
        try {
            return fromStateDict(RandomWeights.asStateDict("random HunyuanVideo (seed " + seed + ")", weights), config, compute);
        } finally {
            Tensors.closeAll(weights.values()); // the model holds its own references
        }
    }

    /** A shapes-only model on the meta device (no weight memory): dry runs of real-size configurations. */
    public static HunyuanVideoTransformer meta(HunyuanVideoConfig config, DType compute) {
        return meta(config, compute, false);
    }

    /** As {@link #meta(HunyuanVideoConfig, DType)}, with the block offload's schedule running on meta tensors. */
    public static HunyuanVideoTransformer meta(HunyuanVideoConfig config, DType compute, boolean offloadBlocks) {
        return fromStateDict(StateDict.recording("meta HunyuanVideo " + config), config, compute, offloadBlocks);
    }

    /** Builds the model from diffusers-named tensors; fails on missing, mis-shaped or unexpected tensors. */
    public static HunyuanVideoTransformer fromStateDict(StateDict sd, HunyuanVideoConfig c, DType compute) {
        return fromStateDict(sd, c, compute, false);
    }

    /**
     * As {@link #fromStateDict(StateDict, HunyuanVideoConfig, DType)}; with {@code offloadBlocks} the blocks' Linear weights
     * stay on the host and move to the device one block at a time while it runs ({@link io.mmdit4j.nn.BlockOffload}; nothing
     * changes on the CPU).
     */
    public static HunyuanVideoTransformer fromStateDict(StateDict weights, HunyuanVideoConfig c, DType compute, boolean offloadBlocks) {
        return Modules.loadingModel(weights, compute, offloadBlocks, (sd, built) -> {
            long dim = c.innerDim();
            HunyuanVideoPatchEmbed xEmb = Modules.track(built, HunyuanVideoPatchEmbed.load(sd, "x_embedder", c, compute));
            HunyuanVideoTokenRefiner refiner = Modules.track(built, HunyuanVideoTokenRefiner.load(sd, "context_embedder.", c, compute));
            MlpEmbedder timestep = Modules.track(built, MlpEmbedder.load(sd, "time_text_embed.timestep_embedder", 256, dim, compute));
            MlpEmbedder guidance = c.guidanceEmbeds()
                    ? Modules.track(built, MlpEmbedder.load(sd, "time_text_embed.guidance_embedder", 256, dim, compute)) : null;
            MlpEmbedder text = Modules.track(built, MlpEmbedder.load(sd, "time_text_embed.text_embedder", c.pooledProjectionDim(), dim, compute));
            List<HunyuanVideoDualBlock> duals = new ArrayList<>();
            for (int i = 0; i < c.numLayers(); i++) {
                duals.add(Modules.track(built, HunyuanVideoDualBlock.load(sd, "transformer_blocks." + i + ".", c, compute)));
            }
            List<HunyuanVideoSingleBlock> singles = new ArrayList<>();
            for (int i = 0; i < c.numSingleLayers(); i++) {
                singles.add(Modules.track(built, HunyuanVideoSingleBlock.load(sd, "single_transformer_blocks." + i + ".", c, compute)));
            }
            AdaLayerNormContinuous normOut = Modules.track(built, AdaLayerNormContinuous.load(sd, "norm_out", dim, compute));
            Linear projOut = Modules.track(built, Linear.load(sd, "proj_out", dim, c.patchValues(), compute));
            sd.requireAllTaken();
            return new HunyuanVideoTransformer(c, compute, sd.device(), xEmb, refiner, timestep, guidance, text, List.copyOf(duals),
                    List.copyOf(singles), normOut, projOut, sd.built(Linear.class), offloadBlocks);
        });
    }



    public HunyuanVideoConfig config() { return config; }

    /** Every Linear of the model under its diffusers name, in load order (the names its loader gave them). */
    public Map<String, Linear> linears() { return linears; }
    public DType dtype() { return dtype; }
    public DeviceSpec device() { return device; }

    /** The block offload (inactive unless loaded with {@code offloadBlocks} on a device other than the CPU). */
    public io.mmdit4j.nn.BlockOffload offload() { return offload; }

    /** Blocks that take a conditioning vector (and so a guidance schedule): dual-stream then single-stream. */
    public int numGuidedBlocks() { return config.totalBlocks(); }

    /** An input on this model's device in its compute dtype (a no-op view when it already is). */
    private Tensor place(Tensor t) {
        return device.isCpu() ? t.to(dtype.scalarType()) : io.mmdit4j.runtime.Transfers.to(t, device, dtype.scalarType()); // counted when it moves
    }

    /** An input on this model's device, dtype unchanged (timesteps, guidance and masks keep the caller's precision). */
    private Tensor onDevice(Tensor t) {
        return device.isCpu() ? t : io.mmdit4j.runtime.Transfers.to(t, device); // counted when it moves
    }

    // ---------------------------------------------------------------- conditioning

    /**
     * {@code temb = (timestep_embedder(sin(t)) + guidance_embedder(sin(g))) + text_embedder(pooled)}, [B, D]; the
     * sinusoids are fp32 and cast to the compute dtype, t and g are used as given (σ·1000 and scale·1000).
     */
    public Tensor timeTextEmbed(Tensor timestep, Tensor guidance, Tensor pooled) {
        Tensor temb = time_text_embed_timestep_embedder.forward(Timesteps.sinusoidal(onDevice(timestep), 256).to(dtype.scalarType()));
        if (time_text_embed_guidance_embedder != null) {
            temb = temb.add(time_text_embed_guidance_embedder.forward(Timesteps.sinusoidal(onDevice(guidance), 256).to(dtype.scalarType())));
        }
        return temb.add(time_text_embed_text_embedder.forward(place(pooled)));
    }

    /**
     * A guidance direction {@code text_embedder(pooled+) - text_embedder(pooled-)}, [R, D] with R rows of the inputs
     * (1 or B), through the CLIP-pooled path of {@code temb}; the timestep and guidance terms cancel, so this is
     * computed once per request. Owned by the caller (or by the plan it is given to).
     */
    public Tensor guidanceDelta(Tensor pooledPos, Tensor pooledNeg) {
        return time_text_embed_text_embedder.direction(pooledPos, pooledNeg, this::place);
    }

    /**
     * RoPE table for a latent grid of {@code frames × height × width} patches (after patching): positions (t, h, w)
     * in row-major order, per-axis fp32 frequencies with theta from the config. Build once per video size and reuse.
     */
    public Rope rope(long frames, long height, long width) {
        long n = frames * height * width;
        if (frames < 1 || height < 1 || width < 1 || n > Integer.MAX_VALUE / 3) {
            throw new IllegalArgumentException("latent patch grid " + frames + "x" + height + "x" + width + " is empty or too large");
        }
        float[] ids = new float[(int) n * 3];
        int i = 0;
        for (long t = 0; t < frames; t++) {
            for (long h = 0; h < height; h++) {
                for (long w = 0; w < width; w++) {
                    ids[i++] = t;
                    ids[i++] = h;
                    ids[i++] = w;
                }
            }
        }
        try (PointerScope scope = new PointerScope()) {
            return Rope.buildFp32(Tensors.fromFloats(ids, n, 3), config.ropeAxesDim(), config.ropeTheta(), device);
        }
    }

    // ---------------------------------------------------------------- forward

    /**
     * Fails when a row of {@code mask} [B, S] has no real token: the refiner's masked mean would be 0/0 (NaN everywhere).
     * Reads the mask's values (a synchronisation off the CPU): once per request, before the loop.
     */
    public static void requireRealTokens(Tensor mask) {
        if (mask.is_meta()) return; // shapes only
        try (PointerScope scope = new PointerScope()) {
            Tensor valid = io.mmdit4j.runtime.Transfers.sync(mask.to(ScalarType.Float).sum(new long[] {1}, false, new ScalarTypeOptional()));
            if (valid.min().item_float() < 1f) {
                throw new IllegalArgumentException("encoder attention mask has a row without real tokens (sums per row: "
                        + Arrays.toString(Tensors.toFloats(valid)) + "); every prompt needs at least one");
            }
        }
    }

    /** Plain forward (no modulation guidance); see {@link #forward(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, ModulationGuidance, int, Rope, ConditioningObserver)}. */
    public Tensor forward(Tensor hidden, Tensor timestep, Tensor encoderHidden, Tensor encoderMask, Tensor pooled, Tensor guidance) {
        return forward(hidden, timestep, encoderHidden, encoderMask, pooled, guidance, ModulationGuidance.none(), 0, null, null);
    }

    public Tensor forward(Tensor hidden, Tensor timestep, Tensor encoderHidden, Tensor encoderMask, Tensor pooled, Tensor guidance,
                          ModulationGuidance g, int step) {
        return forward(hidden, timestep, encoderHidden, encoderMask, pooled, guidance, g, step, null, null);
    }

    /**
     * One transformer call, in the argument order of diffusers' {@code forward}.
     *
     * @param hidden        latents {@code [B, C, F, H, W]}
     * @param timestep      {@code [B]} σ·1000
     * @param encoderHidden LLM states {@code [B, S, text_embed_dim]}
     * @param encoderMask   {@code [B, S]} 1 = real token (right padding: the joint attention sees the first sum(mask) text tokens)
     * @param pooled        CLIP pooled vector {@code [B, pooled_projection_dim]}
     * @param guidance      {@code [B]} guidance_scale·1000, or null for a model without the guidance embedder
     * @param g             per-block modulation guidance
     * @param step          denoising step index, for guidance step windows
     * @param rope          a table from {@link #rope} for this latent size, or null to build one
     * @param observer      sees the per-block conditioning, or null
     * @return the prediction {@code [B, C_out, F, H, W]} in the compute dtype, owned by the caller
     */
    public Tensor forward(Tensor hidden, Tensor timestep, Tensor encoderHidden, Tensor encoderMask, Tensor pooled, Tensor guidance,
                          ModulationGuidance g, int step, Rope rope, ConditioningObserver observer) {
        validate(hidden, timestep, encoderHidden, encoderMask, pooled, guidance);
        long b = hidden.size(0);
        long frames = hidden.size(2) / config.patchSizeT(), rows = hidden.size(3) / config.patchSize(), cols = hidden.size(4) / config.patchSize();
        try (InferenceMode guard = new InferenceMode(); PointerScope scope = new PointerScope()) {
            g.validate((int) b, config.innerDim(), config.totalBlocks());
            Tensor text = place(encoderHidden);
            Tensor mask = onDevice(encoderMask);
            Tensor temb = timeTextEmbed(timestep, guidance, pooled);                                   // [B,D]
            // The streams are owned and replaced block by block: only one block's temporaries live at a time.
            Tensor x = null, ctx = null, h = null;
            Rope table = null;
            try {
                x = Scopes.owned(() -> x_embedder.forward(place(hidden)));                            // [B,N,D]
                ctx = Scopes.owned(() -> context_embedder.forward(text, mask, onDevice(timestep)));   // [B,T,D]
                long imageLen = x.size(1);
                Tensor keyMask = jointKeyMask(mask, imageLen);                                        // [B,1,1,N+T]
                table = rope != null ? rope : rope(frames, rows, cols);
                if (table.length() != imageLen) {
                    throw new IllegalArgumentException("RoPE table has " + table.length() + " positions, the latents give " + imageLen + " tokens");
                }
                BlockConditioning cond = g.resolve(temb, step, config.totalBlocks());
                if (observer != null) observer.onConditioning(step, cond);

                for (int i = 0; i < transformer_blocks.size(); i++) {
                    offload.before(i);
                    HunyuanVideoDualBlock.Output o = transformer_blocks.get(i).forwardOwned(x, ctx, cond.activated(i), table, keyMask);
                    offload.after(i);
                    x.close();
                    ctx.close();
                    x = o.image();
                    ctx = o.text();
                }
                Tensor image = x, txt = ctx;
                h = Scopes.owned(() -> cat(new TensorVector(image, txt), 1));                       // [B,N+T,D] image first
                x.close();
                ctx.close();
                Rope rotary = table;
                for (int j = 0; j < single_transformer_blocks.size(); j++) {
                    HunyuanVideoSingleBlock block = single_transformer_blocks.get(j);
                    Tensor c = cond.activated(config.numLayers() + j);
                    offload.before(config.numLayers() + j);
                    h = Scopes.then(h, t -> Scopes.owned(() -> block.forward(t, c, rotary, keyMask)));
                    offload.after(config.numLayers() + j);
                }
                Tensor normed = norm_out.forward(h.narrow(1, 0, imageLen), cond.finalActivated());  // [B,N,D]
                Tensor out = unpatchify(proj_out.forward(normed), b, frames, rows, cols);            // [B,C,F,H,W]
                return Tensors.keep(out);
            } finally {
                if (rope == null && table != null) table.close();
                Native.release(x);
                Native.release(ctx);
                Native.release(h);
            }
        }
    }

    /**
     * The joint attention's key mask {@code [B, 1, 1, N+T]} (image first): all image tokens, and text token j when
     * {@code j < sum(mask)}, as the reference builds it (it assumes right padding).
     */
    static Tensor jointKeyMask(Tensor mask, long imageTokens) {
        long b = mask.size(0), t = mask.size(1);
        Tensor counts = mask.sum(new long[] {1}, false, new ScalarTypeOptional(ScalarType.Int));     // [B]
        Tensor idx = arange(new Scalar(t), new TensorOptions(ScalarType.Int)).to(mask.device(), ScalarType.Int);
        Tensor textValid = idx.unsqueeze(0).lt(counts.unsqueeze(1));                                 // [B,T] bool
        Tensor imageValid = ones(new long[] {b, imageTokens}, new TensorOptions(ScalarType.Bool)).to(mask.device(), ScalarType.Bool);
        return cat(new TensorVector(imageValid, textValid), 1).view(b, 1, 1, imageTokens + t);
    }

    /** {@code [B, N, C·pt·p·p] -> [B, C, F·pt, H·p, W·p]}; per token the values are (c, pt, py, px), c outermost. */
    private Tensor unpatchify(Tensor y, long b, long frames, long rows, long cols) {
        int p = config.patchSize(), pt = config.patchSizeT(), c = config.outChannels();
        return y.reshape(b, frames, rows, cols, c, pt, p, p).permute(0, 4, 1, 5, 2, 6, 3, 7)
                .reshape(b, c, frames * pt, rows * p, cols * p);
    }

    private void validate(Tensor hidden, Tensor timestep, Tensor encoderHidden, Tensor encoderMask, Tensor pooled, Tensor guidance) {
        if (hidden == null || timestep == null || encoderHidden == null || encoderMask == null || pooled == null) {
            throw new IllegalArgumentException("hidden, timestep, encoderHidden, encoderMask and pooled are required");
        }
        if (hidden.dim() != 5 || hidden.size(1) != config.inChannels()) {
            throw new IllegalArgumentException("hidden states have shape " + Tensors.shapeString(hidden) + ", expected [B, " + config.inChannels() + ", F, H, W]");
        }
        long b = hidden.size(0);
        int p = config.patchSize(), pt = config.patchSizeT();
        if (hidden.size(2) % pt != 0 || hidden.size(3) % p != 0 || hidden.size(4) % p != 0 || hidden.size(2) < 1 || hidden.size(3) < 1 || hidden.size(4) < 1) {
            throw new IllegalArgumentException("hidden states have shape " + Tensors.shapeString(hidden) + ": frames must be a positive multiple of " + pt
                    + " and height/width positive multiples of " + p);
        }
        Tensors.requireShape("timestep", timestep, b);
        if (encoderHidden.dim() != 3 || encoderHidden.size(0) != b || encoderHidden.size(2) != config.textEmbedDim() || encoderHidden.size(1) < 1) {
            throw new IllegalArgumentException("encoder hidden states have shape " + Tensors.shapeString(encoderHidden) + ", expected [" + b + ", S, "
                    + config.textEmbedDim() + "]");
        }
        Tensors.requireShape("encoder attention mask", encoderMask, b, encoderHidden.size(1));
        // a host read: done here for a CPU mask only; the pipeline checks its mask once per request before moving it
        if (encoderMask.is_cpu()) requireRealTokens(encoderMask);
        Tensors.requireShape("pooled projections", pooled, b, config.pooledProjectionDim());
        if (config.guidanceEmbeds()) {
            if (guidance == null) throw new IllegalArgumentException("this model embeds the guidance scale: guidance [" + b + "] is required");
            Tensors.requireShape("guidance", guidance, b);
        }
    }

    @Override
    public void close() {
        Modules.closeAll(Arrays.asList(x_embedder, context_embedder, time_text_embed_timestep_embedder, time_text_embed_guidance_embedder,
                time_text_embed_text_embedder, norm_out, proj_out));
        Modules.closeAll(transformer_blocks);
        Modules.closeAll(single_transformer_blocks);
        offload.close();
        Native.release(torchDevice);
    }
}
