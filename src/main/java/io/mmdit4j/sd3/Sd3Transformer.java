package io.mmdit4j.sd3;

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
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * SD3 / SD3.5 transformer ({@code SD3Transformer2DModel}, "MMDiT") with modulation guidance as a first-class argument:
 * the forward takes a {@link ModulationGuidance} plan and gives every joint block its own conditioning vector (blocks
 * are numbered 0..num_layers-1; the final norm keeps the plain {@code temb}). Loads diffusers {@code transformer/}
 * folders, model folders with {@code transformer/}, and original single files ({@code model.diffusion_model.*}).
 * Weights are views of the memory-mapped file when the compute dtype equals the stored dtype.
 */
public final class Sd3Transformer implements AutoCloseable {
    private final Sd3Config config;
    private final DType dtype;
    private final DeviceSpec device;
    private final Device torchDevice;

    final Sd3PatchEmbed pos_embed;
    final MlpEmbedder time_text_embed_timestep_embedder;
    final MlpEmbedder time_text_embed_text_embedder;
    final Linear context_embedder;
    final List<Sd3JointBlock> transformer_blocks;
    final AdaLayerNormContinuous norm_out;
    final Linear proj_out;
    private final Map<String, Linear> linears; // every Linear under its diffusers name, as loaded
    private final io.mmdit4j.nn.BlockOffload offload; // none unless loaded with offloadBlocks on an accelerator

    private Sd3Transformer(Sd3Config config, DType dtype, DeviceSpec device, Sd3PatchEmbed pos_embed, MlpEmbedder timestep,
                           MlpEmbedder text, Linear context_embedder, List<Sd3JointBlock> blocks, AdaLayerNormContinuous norm_out,
                           Linear proj_out, Map<String, Linear> linears, boolean offloadBlocks) {
        this.config = config;
        this.dtype = dtype;
        this.device = device;
        this.torchDevice = Native.keep(device.torchDevice());
        this.pos_embed = pos_embed;
        this.time_text_embed_timestep_embedder = timestep;
        this.time_text_embed_text_embedder = text;
        this.context_embedder = context_embedder;
        this.transformer_blocks = blocks;
        this.norm_out = norm_out;
        this.proj_out = proj_out;
        this.linears = linears;
        this.offload = offloadBlocks ? io.mmdit4j.nn.BlockOffload.of(linears, device) : io.mmdit4j.nn.BlockOffload.none();
    }

    // ---------------------------------------------------------------- loading

    /** Loads on the CPU; see {@link #load(Path, DType, DeviceSpec)}. */
    public static Sd3Transformer load(Path path, DType compute) {
        return load(path, compute, DeviceSpec.CPU);
    }

    /**
     * Loads a diffusers transformer folder ({@code config.json} + weights, sharded or not), a model folder with
     * {@code transformer/}, or a single safetensors file in diffusers or original naming (configuration detected from
     * the tensors). Bundled text encoders / VAE in an original file are ignored.
     */
    public static Sd3Transformer load(Path path, DType compute, DeviceSpec device) {
        return load(path, compute, device, false);
    }

    /** As {@link #load(Path, DType, DeviceSpec)}; {@code offloadBlocks}: see {@link #fromStateDict(StateDict, Sd3Config, DType, boolean)}. */
    public static Sd3Transformer load(Path path, DType compute, DeviceSpec device, boolean offloadBlocks) {
        DType.checkCompute(compute);
        device.requireAvailable();
        return TransformerFiles.read(path, Sd3Transformer::diffusersNamed,
                (weights, sd) -> fromStateDict(sd.onDevice(device), config(weights, sd), compute, offloadBlocks));
    }

    /** The configuration of a checkpoint from its config.json or its tensor names and shapes; reads headers only. */
    public static Sd3Config inspect(Path path) {
        return TransformerFiles.read(path, Sd3Transformer::diffusersNamed, Sd3Transformer::config);
    }

    private static StateDict diffusersNamed(StateDict sd) {
        return Sd3KeyMap.isOriginal(sd) ? Sd3KeyMap.fromOriginal(sd) : sd;
    }

    private static Sd3Config config(Path weights, StateDict sd) {
        Path json = TransformerFiles.configJson(weights);
        if (json != null) return Sd3Config.fromDiffusersConfig(json);
        return Sd3Config.detect(sd);
    }

    /** A model with deterministic random weights ({@link RandomWeights}): demos, benchmarks and tests at any size. */
    public static Sd3Transformer random(Sd3Config config, long seed, DType compute) {
        Map<String, Tensor> weights = randomWeights(config, seed, compute);
        try {
            return fromStateDict(RandomWeights.asStateDict("random SD3 (seed " + seed + ")", weights), config, compute);
        } finally {
            Tensors.closeAll(weights.values()); // the model holds its own references
        }
    }

    /** A shapes-only model on the meta device (no weight memory): dry runs of real-size configurations. */
    public static Sd3Transformer meta(Sd3Config config, DType compute) {
        return meta(config, compute, false);
    }

    /** As {@link #meta(Sd3Config, DType)}, with the block offload's schedule running on meta tensors. */
    public static Sd3Transformer meta(Sd3Config config, DType compute, boolean offloadBlocks) {
        return fromStateDict(StateDict.recording("meta SD3 " + config), config, compute, offloadBlocks);
    }

    /** Deterministic random diffusers-named weights for {@code config}; the caller closes them. */
    public static Map<String, Tensor> randomWeights(Sd3Config config, long seed, DType dtype) {
        return RandomWeights.generate(Sd3Parameters.shapes(config), seed, dtype);
    }

    /** Builds the model from diffusers-named tensors; fails on missing, mis-shaped or unexpected tensors. */
    public static Sd3Transformer fromStateDict(StateDict sd, Sd3Config c, DType compute) {
        return fromStateDict(sd, c, compute, false);
    }

    /**
     * As {@link #fromStateDict(StateDict, Sd3Config, DType)}; with {@code offloadBlocks} the joint blocks' Linear weights stay
     * on the host and move to the device one block at a time while it runs ({@link io.mmdit4j.nn.BlockOffload}; nothing
     * changes on the CPU).
     */
    public static Sd3Transformer fromStateDict(StateDict weights, Sd3Config c, DType compute, boolean offloadBlocks) {
        return Modules.loadingModel(weights, compute, offloadBlocks, (sd, built) -> {
            long dim = c.innerDim();
            Sd3PatchEmbed patch = Modules.track(built, Sd3PatchEmbed.load(sd, "pos_embed", c, compute));
            MlpEmbedder timestep = Modules.track(built, MlpEmbedder.load(sd, "time_text_embed.timestep_embedder", 256, dim, compute));
            MlpEmbedder text = Modules.track(built, MlpEmbedder.load(sd, "time_text_embed.text_embedder", c.pooledProjectionDim(), dim, compute));
            Linear ctxEmb = Modules.track(built, Linear.load(sd, "context_embedder", c.jointAttentionDim(), dim, compute));
            List<Sd3JointBlock> blocks = new ArrayList<>();
            for (int i = 0; i < c.numLayers(); i++) {
                blocks.add(Modules.track(built, Sd3JointBlock.load(sd, "transformer_blocks." + i + ".", i, c, compute)));
            }
            AdaLayerNormContinuous normOut = Modules.track(built, AdaLayerNormContinuous.load(sd, "norm_out", dim, compute));
            Linear projOut = Modules.track(built, Linear.load(sd, "proj_out", dim, (long) c.patchSize() * c.patchSize() * c.outChannels(), compute));
            sd.requireAllTaken();
            return new Sd3Transformer(c, compute, sd.device(), patch, timestep, text, ctxEmb, List.copyOf(blocks), normOut, projOut,
                    sd.built(Linear.class), offloadBlocks);
        });
    }



    public Sd3Config config() { return config; }
    public DType dtype() { return dtype; }
    public DeviceSpec device() { return device; }

    /** Blocks that modulation guidance numbers: the joint blocks. */
    public int numGuidedBlocks() { return config.numGuidedBlocks(); }

    /** An input on this model's device in its compute dtype (a no-op view when it already is). */
    private Tensor place(Tensor t) {
        return device.isCpu() ? t.to(dtype.scalarType()) : io.mmdit4j.runtime.Transfers.to(t, device, dtype.scalarType()); // counted when it moves
    }

    // ---------------------------------------------------------------- conditioning

    /**
     * {@code temb = timestep_embedder(proj(t)) + text_embedder(pooled)}, [B, D]. {@code t} is the scheduler's value
     * (σ·1000) and stays fp32 up to the sinusoid: no ×1000 and no rounding to the compute dtype, unlike FLUX.
     */
    public Tensor timeTextEmbed(Tensor timestep, Tensor pooled) {
        Tensor t = device.isCpu() ? timestep.to(ScalarType.Float) : io.mmdit4j.runtime.Transfers.to(timestep, device, ScalarType.Float);
        Tensor temb = time_text_embed_timestep_embedder.forward(Timesteps.sinusoidal(t, 256).to(dtype.scalarType()));
        return temb.add(time_text_embed_text_embedder.forward(place(pooled)));
    }

    /**
     * A guidance direction {@code TextMLP(pooled+) - TextMLP(pooled-)}, [R, D] with R rows of the inputs (1 or B). The
     * timestep terms of {@code temb} cancel, so this is computed once per request. Owned by the caller.
     */
    public Tensor guidanceDelta(Tensor pooledPos, Tensor pooledNeg) {
        return time_text_embed_text_embedder.direction(pooledPos, pooledNeg, this::place);
    }

    // ---------------------------------------------------------------- forward

    /** Plain forward (no modulation guidance). */
    public Tensor forward(Tensor hiddenStates, Tensor encoderHiddenStates, Tensor pooledProjections, Tensor timestep) {
        return forward(hiddenStates, encoderHiddenStates, pooledProjections, timestep, ModulationGuidance.none(), 0, null);
    }

    public Tensor forward(Tensor hiddenStates, Tensor encoderHiddenStates, Tensor pooledProjections, Tensor timestep,
                          ModulationGuidance guidance, int step) {
        return forward(hiddenStates, encoderHiddenStates, pooledProjections, timestep, guidance, step, null);
    }

    /**
     * @param hiddenStates        latents [B, C, H, W] (not packed); H and W multiples of the patch size
     * @param encoderHiddenStates joint text states [B, S, joint_attention_dim]
     * @param pooledProjections   pooled text embedding [B, pooled_projection_dim]
     * @param timestep            [B] (or [1]) in the scheduler's 0..1000 scale
     * @param guidance            per-block modulation guidance (rows, layers, step window)
     * @param step                denoising step index, for guidance step windows
     * @param observer            sees the per-block conditioning, or null
     * @return the prediction [B, out_channels, H, W] in the compute dtype, owned by the caller
     */
    public Tensor forward(Tensor hiddenStates, Tensor encoderHiddenStates, Tensor pooledProjections, Tensor timestep,
                          ModulationGuidance guidance, int step, ConditioningObserver observer) {
        long batch = validate(hiddenStates, encoderHiddenStates, pooledProjections, timestep);
        try (InferenceMode guard = new InferenceMode(); PointerScope scope = new PointerScope()) {
            guidance.validate((int) batch, config.innerDim(), numGuidedBlocks());
            long p = config.patchSize(), h = hiddenStates.size(2) / p, w = hiddenStates.size(3) / p;
            Tensor t = timestep.reshape(-1);
            if (t.size(0) == 1 && batch > 1) t = t.expand(batch);
            Tensor temb = timeTextEmbed(t, pooledProjections);                                       // [B,D]
            BlockConditioning cond = guidance.resolve(temb, step, numGuidedBlocks());
            if (observer != null) observer.onConditioning(step, cond);

            // The streams are owned and replaced block by block: only one block's temporaries live at a time.
            Tensor x = null, ctx = null;
            try {
                x = Scopes.owned(() -> pos_embed.forward(place(hiddenStates)));                     // [B,N,D]
                ctx = Scopes.owned(() -> context_embedder.forward(place(encoderHiddenStates)));     // [B,S,D]
                for (int i = 0; i < transformer_blocks.size(); i++) {
                    offload.before(i);
                    Sd3JointBlock.Output o = transformer_blocks.get(i).forwardOwned(x, ctx, cond.activated(i));
                    offload.after(i);
                    x.close();
                    ctx.close();
                    x = o.image();
                    ctx = o.text(); // null after the context_pre_only block
                }
                Tensor out = proj_out.forward(norm_out.forward(x, cond.finalActivated()));          // [B,N,p·p·C]
                long c = config.outChannels();
                out = out.view(batch, h, w, p, p, c).permute(0, 5, 1, 3, 2, 4).reshape(batch, c, h * p, w * p); // [B,C,H,W]
                return Tensors.keep(out);
            } finally {
                Native.release(x);
                Native.release(ctx);
            }
        }
    }

    /** Checks the input shapes before any native work; returns the batch size. */
    private long validate(Tensor hidden, Tensor text, Tensor pooled, Tensor timestep) {
        if (hidden == null || text == null || pooled == null || timestep == null) {
            throw new IllegalArgumentException("hidden_states, encoder_hidden_states, pooled_projections and timestep are required");
        }
        long[] hs = Tensors.shape(hidden);
        int p = config.patchSize();
        if (hs.length != 4 || hs[1] != config.inChannels() || hs[2] % p != 0 || hs[3] % p != 0 || hs[2] == 0 || hs[3] == 0) {
            throw new IllegalArgumentException("hidden_states has shape " + Arrays.toString(hs) + ", expected [B, " + config.inChannels()
                    + ", H, W] with H and W positive multiples of the patch size " + p);
        }
        long b = hs[0];
        long max = (long) config.posEmbedMaxSize() * p;
        if (hs[2] > max || hs[3] > max) {
            throw new IllegalArgumentException("latent " + hs[2] + "x" + hs[3] + " exceeds the positional table of "
                    + config.posEmbedMaxSize() + " patches per side (at most " + max + "x" + max + " latent pixels, "
                    + max * 8 + " image pixels)");
        }
        long[] ts = Tensors.shape(text);
        if (ts.length != 3 || ts[0] != b || ts[2] != config.jointAttentionDim() || ts[1] < 1) {
            throw new IllegalArgumentException("encoder_hidden_states has shape " + Arrays.toString(ts) + ", expected [" + b
                    + ", S, " + config.jointAttentionDim() + "]");
        }
        long[] ps = Tensors.shape(pooled);
        if (ps.length != 2 || ps[0] != b || ps[1] != config.pooledProjectionDim()) {
            throw new IllegalArgumentException("pooled_projections has shape " + Arrays.toString(ps) + ", expected [" + b + ", "
                    + config.pooledProjectionDim() + "]");
        }
        long[] tt = Tensors.shape(timestep);
        if (!(tt.length == 1 && (tt[0] == b || tt[0] == 1)) && !(tt.length == 0)) {
            throw new IllegalArgumentException("timestep has shape " + Arrays.toString(tt) + ", expected [" + b + "] or [1]");
        }
        return b;
    }

    /**
     * Every Linear of the model under its diffusers name (also when loaded from an original single file), in load order:
     * the names its loader gave them ({@link StateDict#built(Class)}; the patch embedding's convolution is not one). Their
     * weights can be swapped ({@link Linear#replaceWeight}), e.g. to merge a LoRA.
     */
    public Map<String, Linear> linears() {
        return linears;
    }

    /** The block offload (inactive unless loaded with {@code offloadBlocks} on a device other than the CPU). */
    public io.mmdit4j.nn.BlockOffload offload() {
        return offload;
    }

    @Override
    public void close() {
        Modules.closeAll(Arrays.asList(pos_embed, time_text_embed_timestep_embedder, time_text_embed_text_embedder, context_embedder,
                norm_out, proj_out));
        Modules.closeAll(transformer_blocks);
        offload.close();
        Native.release(torchDevice);
    }
}
