package io.mmdit4j.flux;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.mmdit4j.guidance.BlockConditioning;
import io.mmdit4j.guidance.ConditioningObserver;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.io.ModelFormatException;
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
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Objects;

import static org.bytedeco.pytorch.global.torch.cat;

/**
 * FLUX.1 transformer ({@code FluxTransformer2DModel}, schnell and dev) with modulation guidance as a
 * first-class argument: the forward takes a {@link ModulationGuidance} plan and gives every block its own
 * conditioning vector. Loads diffusers {@code transformer/} folders and original BFL single files.
 * Weights are views of the memory-mapped file when the compute dtype equals the stored dtype.
 */
public final class FluxTransformer implements AutoCloseable {
    private static final Scalar THOUSAND = Native.keep(new Scalar(1000.0));

    private final FluxConfig config;
    private final DType dtype;
    private final DeviceSpec device;
    private final Device torchDevice;

    final Linear x_embedder;
    final MlpEmbedder time_text_embed_timestep_embedder;
    final MlpEmbedder time_text_embed_guidance_embedder; // dev only
    final MlpEmbedder time_text_embed_text_embedder;
    final Linear context_embedder;
    final List<FluxDoubleBlock> transformer_blocks;
    final List<FluxSingleBlock> single_transformer_blocks;
    final AdaLayerNormContinuous norm_out;
    final Linear proj_out;
    private final Map<String, Linear> linears; // every Linear under its diffusers name, as loaded
    private final io.mmdit4j.nn.BlockOffload offload; // none unless loaded with offloadBlocks on an accelerator

    private FluxTransformer(FluxConfig config, DType dtype, DeviceSpec device, Linear x_embedder, MlpEmbedder timestep, MlpEmbedder guidance,
                            MlpEmbedder text, Linear context_embedder, List<FluxDoubleBlock> doubles, List<FluxSingleBlock> singles,
                            AdaLayerNormContinuous norm_out, Linear proj_out, Map<String, Linear> linears, boolean offloadBlocks) {
        this.config = config;
        this.dtype = dtype;
        this.device = device;
        this.torchDevice = Native.keep(device.torchDevice());
        this.x_embedder = x_embedder;
        this.time_text_embed_timestep_embedder = timestep;
        this.time_text_embed_guidance_embedder = guidance;
        this.time_text_embed_text_embedder = text;
        this.context_embedder = context_embedder;
        this.transformer_blocks = doubles;
        this.single_transformer_blocks = singles;
        this.norm_out = norm_out;
        this.proj_out = proj_out;
        this.linears = linears;
        this.offload = offloadBlocks ? io.mmdit4j.nn.BlockOffload.of(linears, device) : io.mmdit4j.nn.BlockOffload.none();
    }

    // ---------------------------------------------------------------- loading

    /** Loads a diffusers transformer folder (or a model folder with {@code transformer/}) or a BFL single file. */
    public static FluxTransformer load(Path path, DType compute) {
        return load(path, compute, null);
    }

    /**
     * @param axesDims RoPE axis widths for BFL files (not stored in the weights); null reads {@code bfl_params.json}
     *                 beside the file when present, else FLUX's default split
     */
    public static FluxTransformer load(Path path, DType compute, int[] axesDims) {
        return load(path, compute, axesDims, DeviceSpec.CPU);
    }

    /** As {@link #load(Path, DType, int[])}, with the weights placed on {@code device} (CUDA copies them there). */
    public static FluxTransformer load(Path path, DType compute, int[] axesDims, DeviceSpec device) {
        return load(path, compute, axesDims, device, false);
    }

    /** As {@link #load(Path, DType, int[], DeviceSpec)}; {@code offloadBlocks}: see {@link #fromStateDict(StateDict, FluxConfig, DType, boolean)}. */
    public static FluxTransformer load(Path path, DType compute, int[] axesDims, DeviceSpec device, boolean offloadBlocks) {
        DType.checkCompute(compute);
        device.requireAvailable();
        return TransformerFiles.read(path, FluxTransformer::diffusersNamed,
                (weights, sd) -> fromStateDict(sd.onDevice(device), config(weights, sd, axesDims), compute, offloadBlocks));
    }

    /** The configuration of a checkpoint from its config.json or its tensor names and shapes; reads headers only. */
    public static FluxConfig inspect(Path path, int[] axesDims) {
        return TransformerFiles.read(path, FluxTransformer::diffusersNamed, (weights, sd) -> config(weights, sd, axesDims));
    }

    /** The transformer weights {@link #load} reads for {@code path}: {@link TransformerFiles#transformerPath}. */
    public static Path transformerPath(Path path) {
        return TransformerFiles.transformerPath(path);
    }

    private static StateDict diffusersNamed(StateDict sd) {
        return FluxKeyMap.isBfl(sd) ? FluxKeyMap.fromBfl(sd) : sd;
    }

    private static FluxConfig config(Path weights, StateDict sd, int[] axesDims) {
        Path json = TransformerFiles.configJson(weights);
        if (json != null) return FluxConfig.fromDiffusersConfig(json);
        return FluxConfig.detect(sd, axesDims != null ? axesDims : axesBeside(weights));
    }

    private static int[] axesBeside(Path file) {
        Path params = file.resolveSibling("bfl_params.json");
        if (!Files.isRegularFile(params)) return null;
        try {
            JsonNode axes = new ObjectMapper().readTree(Files.readString(params)).get("axes_dim");
            if (axes == null || !axes.isArray()) return null;
            int[] out = new int[axes.size()];
            for (int i = 0; i < out.length; i++) out[i] = axes.get(i).asInt();
            return out;
        } catch (IOException e) {
            throw new ModelFormatException(params + ": cannot read: " + e.getMessage(), e);
        }
    }

    /** A model with deterministic random weights ({@link io.mmdit4j.io.RandomWeights}): demos and benchmarks at any size. */
    public static FluxTransformer random(FluxConfig config, long seed, DType compute) {
        Map<String, Tensor> weights = randomWeights(config, seed, compute);
        try {
            return fromStateDict(io.mmdit4j.io.RandomWeights.asStateDict("random FLUX (seed " + seed + ")", weights), config, compute);
        } finally {
            Tensors.closeAll(weights.values()); // the model holds its own references
        }
    }

    /** A shapes-only model on the meta device (no weight memory): dry runs of real-size configurations. */
    public static FluxTransformer meta(FluxConfig config, DType compute) {
        return fromStateDict(StateDict.recording("meta FLUX " + config), config, compute);
    }

    /**
     * A shapes-only model whose Linears hold the quantized data a checkpoint written as {@code quant} would have (meta
     * tensors): dry runs of the real-size quantized model, every dequantization op included.
     */
    public static FluxTransformer meta(FluxConfig config, DType compute, io.mmdit4j.io.quant.CheckpointQuantizer.Target quant) {
        return meta(config, compute, quant, false);
    }

    /** As {@link #meta(FluxConfig, DType, io.mmdit4j.io.quant.CheckpointQuantizer.Target)} ({@code quant} null: plain), with the block offload's schedule running on meta tensors. */
    public static FluxTransformer meta(FluxConfig config, DType compute, io.mmdit4j.io.quant.CheckpointQuantizer.Target quant, boolean offloadBlocks) {
        StateDict sd = StateDict.recording("meta FLUX " + config + (quant == null ? "" : " " + quant));
        if (quant != null) sd.quantizedAs((k, shape) -> io.mmdit4j.io.quant.CheckpointQuantizer.meta(quant, k, shape));
        return fromStateDict(sd, config, compute, offloadBlocks);
    }

    /** Deterministic random diffusers-named weights for {@code config}; the caller closes them. */
    public static Map<String, Tensor> randomWeights(FluxConfig config, long seed, DType dtype) {
        return io.mmdit4j.io.RandomWeights.generate(FluxParameters.shapes(config), seed, dtype);
    }

    /** Builds the model from diffusers-named tensors; fails on missing, mis-shaped or unexpected tensors. */
    public static FluxTransformer fromStateDict(StateDict sd, FluxConfig c, DType compute) {
        return fromStateDict(sd, c, compute, false);
    }

    /** The blocks' Linear weights (2-D tensors under {@code transformer_blocks.N.} / {@code single_transformer_blocks.N.}). */

    /**
     * As {@link #fromStateDict(StateDict, FluxConfig, DType)}; with {@code offloadBlocks} the blocks' Linear weights stay on
     * the host and move to the device one block at a time while it runs ({@link io.mmdit4j.nn.BlockOffload}; nothing
     * changes on the CPU).
     */
    public static FluxTransformer fromStateDict(StateDict weights, FluxConfig c, DType compute, boolean offloadBlocks) {
        return Modules.loadingModel(weights, compute, offloadBlocks, (sd, built) -> {
            long dim = c.innerDim();
            Linear xEmb = Modules.track(built, Linear.load(sd, "x_embedder", c.inChannels(), dim, compute));
            MlpEmbedder timestep = Modules.track(built, MlpEmbedder.load(sd, "time_text_embed.timestep_embedder", 256, dim, compute));
            MlpEmbedder guidance = c.guidanceEmbeds()
                    ? Modules.track(built, MlpEmbedder.load(sd, "time_text_embed.guidance_embedder", 256, dim, compute)) : null;
            MlpEmbedder text = Modules.track(built, MlpEmbedder.load(sd, "time_text_embed.text_embedder", c.pooledProjectionDim(), dim, compute));
            Linear ctxEmb = Modules.track(built, Linear.load(sd, "context_embedder", c.jointAttentionDim(), dim, compute));
            List<FluxDoubleBlock> doubles = new ArrayList<>();
            for (int i = 0; i < c.numLayers(); i++) {
                doubles.add(Modules.track(built, FluxDoubleBlock.load(sd, "transformer_blocks." + i + ".", c, compute)));
            }
            List<FluxSingleBlock> singles = new ArrayList<>();
            for (int i = 0; i < c.numSingleLayers(); i++) {
                singles.add(Modules.track(built, FluxSingleBlock.load(sd, "single_transformer_blocks." + i + ".", c, compute)));
            }
            AdaLayerNormContinuous normOut = Modules.track(built, AdaLayerNormContinuous.load(sd, "norm_out", dim, compute));
            Linear projOut = Modules.track(built, Linear.load(sd, "proj_out", dim, c.outChannels(), compute));
            sd.requireAllTaken();
            return new FluxTransformer(c, compute, sd.device(), xEmb, timestep, guidance, text, ctxEmb, List.copyOf(doubles), List.copyOf(singles),
                    normOut, projOut, sd.built(Linear.class), offloadBlocks);
        });
    }



    public FluxConfig config() { return config; }
    public DType dtype() { return dtype; }
    public DeviceSpec device() { return device; }

    /** An input on this model's device in its compute dtype (a no-op view when it already is). */
    private Tensor place(Tensor t) {
        return device.isCpu() ? t.to(dtype.scalarType()) : io.mmdit4j.runtime.Transfers.to(t, device, dtype.scalarType()); // counted when it moves
    }

    // ---------------------------------------------------------------- conditioning

    /**
     * {@code temb = timestep_embedder(proj(t·1000)) [+ guidance_embedder(proj(g·1000))] + text_embedder(pooled)}, [B, D].
     * The ×1000 happens in the compute dtype, so bf16 rounds the timestep exactly as the reference does.
     */
    public Tensor timeTextEmbed(Tensor timestep, Tensor guidance, Tensor pooled) {
        Tensor t = place(timestep).mul(THOUSAND);
        Tensor temb = time_text_embed_timestep_embedder.forward(Timesteps.sinusoidal(t, 256).to(dtype.scalarType()));
        if (time_text_embed_guidance_embedder != null) {
            Tensor g = place(guidance).mul(THOUSAND);
            temb = temb.add(time_text_embed_guidance_embedder.forward(Timesteps.sinusoidal(g, 256).to(dtype.scalarType())));
        }
        return temb.add(time_text_embed_text_embedder.forward(place(pooled)));
    }

    /**
     * A guidance direction {@code TextMLP(pooled+) - TextMLP(pooled-)}, [R, D] with R rows of the inputs (1 or B).
     * The timestep and guidance terms of {@code temb} cancel, so this is computed once per request. Owned by the caller.
     */
    public Tensor guidanceDelta(Tensor pooledPos, Tensor pooledNeg) {
        return time_text_embed_text_embedder.direction(pooledPos, pooledNeg, this::place);
    }

    /** RoPE table for the joint sequence {@code [txt; img]}; build once per token layout and reuse across steps. */
    public Rope rope(Tensor txtIds, Tensor imgIds) {
        try (PointerScope scope = new PointerScope()) {
            return Rope.build(cat(new TensorVector(txtIds, imgIds), 0), config.axesDimsRope(), FluxConfig.ROPE_THETA, device);
        }
    }

    // ---------------------------------------------------------------- forward

    /** Plain forward (no modulation guidance). Returns [B, N, out_channels] in the compute dtype, owned by the caller. */
    public Tensor forward(FluxInputs in) {
        return forward(in, ModulationGuidance.none(), 0, null, null);
    }

    public Tensor forward(FluxInputs in, ModulationGuidance guidance, int step) {
        return forward(in, guidance, step, null, null);
    }

    /**
     * @param guidance per-block modulation guidance (rows, layers, step window)
     * @param step     denoising step index, for guidance step windows
     * @param rope     a table from {@link #rope} for this token layout, or null to build one
     * @param observer sees the per-block conditioning, or null
     */
    public Tensor forward(FluxInputs inputs, ModulationGuidance guidance, int step, Rope rope, ConditioningObserver observer) {
        try (InferenceMode guard = new InferenceMode()) {
            return forwardInternal(inputs, guidance, step, rope, observer);
        }
    }

    /**
     * The same forward with autograd: no inference mode, so gradients reach every weight that requires them (the
     * trainable fp32 leaves of {@link io.mmdit4j.train.FluxTrainable}, LoRA matrices). The modules take their in-place
     * fusions only on tensors that do not require grad, so this computes what {@link #forward} computes. The caller
     * decides the grad mode. Returns [B, N, out_channels], owned by the caller.
     */
    public Tensor forwardWithGrad(FluxInputs inputs, ModulationGuidance guidance, int step) {
        return forwardInternal(inputs, guidance, step, null, null);
    }

    private Tensor forwardInternal(FluxInputs inputs, ModulationGuidance guidance, int step, Rope rope, ConditioningObserver observer) {
        try (PointerScope scope = new PointerScope()) {
            FluxInputs in = inputs.normalized();
            in.validate(config);
            guidance.validate((int) in.hiddenStates().size(0), config.innerDim(), config.totalBlocks());
            Tensor temb = timeTextEmbed(in.timestep(), in.guidance(), in.pooledProjections());       // [B,D]
            Rope table = rope != null ? rope : rope(in.txtIds(), in.imgIds());
            BlockConditioning cond = guidance.resolve(temb, step, config.totalBlocks());
            if (observer != null) observer.onConditioning(step, cond);

            // The streams are owned and replaced block by block: only one block's temporaries live at a time.
            Tensor x = null, ctx = null, h = null;
            try {
                x = Scopes.owned(() -> x_embedder.forward(place(in.hiddenStates())));              // [B,N,D]
                ctx = Scopes.owned(() -> context_embedder.forward(place(in.encoderHiddenStates())));  // [B,T,D]
                for (int i = 0; i < transformer_blocks.size(); i++) {
                    offload.before(i);
                    FluxDoubleBlock.Output o = transformer_blocks.get(i).forwardOwned(x, ctx, cond.activated(i), table);
                    offload.after(i);
                    x.close();
                    ctx.close();
                    x = o.image();
                    ctx = o.text();
                }
                long textLen = ctx.size(1), imageLen = x.size(1);
                Tensor image = x, text = ctx;
                h = Scopes.owned(() -> cat(new TensorVector(text, image), 1));                      // [B,T+N,D]
                x.close();
                ctx.close();
                for (int j = 0; j < single_transformer_blocks.size(); j++) {
                    FluxSingleBlock block = single_transformer_blocks.get(j);
                    Tensor c = cond.activated(config.numLayers() + j);
                    offload.before(config.numLayers() + j);
                    h = Scopes.then(h, t -> Scopes.owned(() -> block.forward(t, c, table)));
                    offload.after(config.numLayers() + j);
                }
                Tensor out = proj_out.forward(norm_out.forward(h.narrow(1, textLen, imageLen),     // [B,N,D]
                        cond.finalActivated()));                                                    // [B,N,out]
                return Tensors.keep(out);
            } finally {
                if (rope == null) table.close();
                Native.release(x);
                Native.release(ctx);
                Native.release(h);
            }
        }
    }

    /**
     * Double block {@code i} alone (benchmarks and experiments): {@code x} [B,N,D] and {@code ctx} [B,T,D] in the compute
     * dtype, {@code activatedCond} = SiLU of the block's conditioning [B,D] (see {@link BlockConditioning#activated}).
     * Returns owned {image [B,N,D], text [B,T,D]}.
     */
    public Tensor[] doubleBlock(int i, Tensor x, Tensor ctx, Tensor activatedCond, Rope rope) {
        Objects.checkIndex(i, transformer_blocks.size());
        checkStream("x", x);
        checkStream("ctx", ctx);
        checkStream("activatedCond", activatedCond);
        try (InferenceMode guard = new InferenceMode()) {
            FluxDoubleBlock.Output o = transformer_blocks.get(i).forwardOwned(x, ctx, activatedCond, rope);
            return new Tensor[] {o.image(), o.text()};
        }
    }

    /** Single block {@code j} alone on {@code h} [B,T+N,D] (text first); returns an owned [B,T+N,D]. */
    public Tensor singleBlock(int j, Tensor h, Tensor activatedCond, Rope rope) {
        Objects.checkIndex(j, single_transformer_blocks.size());
        checkStream("h", h);
        checkStream("activatedCond", activatedCond);
        try (InferenceMode guard = new InferenceMode()) {
            return Scopes.owned(() -> single_transformer_blocks.get(j).forward(h, activatedCond, rope));
        }
    }

    /** A block input: the last dimension must be the model width (checked before any native call). */
    private void checkStream(String name, Tensor t) {
        if (t == null || t.dim() < 2 || t.size(-1) != config.innerDim()) {
            throw new IllegalArgumentException(name + " has shape " + (t == null ? "null" : Arrays.toString(Tensors.shape(t)))
                    + ", expected [..., " + config.innerDim() + "]");
        }
    }

    private static final String[] DOUBLE_CHUNKS = {"shift_msa", "scale_msa", "gate_msa", "shift_mlp", "scale_mlp", "gate_mlp"};
    private static final String[] SINGLE_CHUNKS = {"shift", "scale", "gate"};

    /**
     * Hands {@code visitor} the adaLN modulation vectors every block computes from {@code cond} (what the blocks of a
     * forward with this conditioning use): double blocks' image ({@code norm1}) and text ({@code norm1_context})
     * streams, then single blocks. For statistics; call from a {@link ConditioningObserver} (inside the forward).
     */
    public void modulations(BlockConditioning cond, io.mmdit4j.guidance.ModulationVisitor visitor) {
        try (InferenceMode guard = new InferenceMode(); PointerScope scope = new PointerScope()) {
            for (int i = 0; i < transformer_blocks.size(); i++) {
                FluxDoubleBlock b = transformer_blocks.get(i);
                TensorVector img = b.norm1.modulation(cond.activated(i));
                TensorVector txt = b.norm1_context.modulation(cond.activated(i));
                for (int k = 0; k < DOUBLE_CHUNKS.length; k++) visitor.accept(i, "img", DOUBLE_CHUNKS[k], img.get(k));
                for (int k = 0; k < DOUBLE_CHUNKS.length; k++) visitor.accept(i, "txt", DOUBLE_CHUNKS[k], txt.get(k));
            }
            for (int j = 0; j < single_transformer_blocks.size(); j++) {
                int index = config.numLayers() + j;
                TensorVector m = single_transformer_blocks.get(j).norm.modulation(cond.activated(index));
                for (int k = 0; k < SINGLE_CHUNKS.length; k++) visitor.accept(index, "single", SINGLE_CHUNKS[k], m.get(k));
            }
        }
    }

    /**
     * Every Linear of the model under its diffusers name (also when loaded from a BFL file, whose fused layers are split
     * at load time), in load order: the names its loader gave them ({@link StateDict#built(Class)}). Their weights can be
     * swapped ({@link Linear#replaceWeight}), e.g. to merge a LoRA.
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
        offload.close();
        Modules.closeAll(Arrays.asList(x_embedder, time_text_embed_timestep_embedder, time_text_embed_guidance_embedder,
                time_text_embed_text_embedder, context_embedder, norm_out, proj_out));
        Modules.closeAll(transformer_blocks);
        Modules.closeAll(single_transformer_blocks);
        Native.release(torchDevice);
    }
}
