package io.mmdit4j.flux;

import io.mmdit4j.guidance.BlockConditioning;
import io.mmdit4j.guidance.ConditioningObserver;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.guidance.ModulationVisitor;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.lora.LoraAdapter;
import io.mmdit4j.lora.LoraReport;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.nn.Rope;
import io.mmdit4j.pipeline.EmbeddedGuidance;
import io.mmdit4j.pipeline.FamilyPipeline;
import io.mmdit4j.pipeline.GenerationOption;
import io.mmdit4j.pipeline.GenerationSettings;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.sampling.FlowMatchEulerScheduler;
import io.mmdit4j.sampling.FlowMatchSchedulerConfig;
import io.mmdit4j.sampling.FluxTimesteps;
import io.mmdit4j.sampling.Noise;
import io.mmdit4j.sampling.Schedule;
import io.mmdit4j.vae.AutoencoderKL;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * FLUX.1 text-to-image as diffusers' {@code FluxPipeline.__call__}: prompts → T5 + CLIP → seeded noise → packed
 * latents → flow-matching Euler loop with per-step, per-row modulation guidance → unpack → VAE → images in [0, 1].
 * The shared skeleton ({@link io.mmdit4j.pipeline.Pipeline#generate}) runs the steps; they are also public for callers
 * that need intermediate results.
 */
public final class FluxPipeline implements FamilyPipeline<FluxTextEncoders.Embeddings> {
    private final FluxTextEncoders text;
    private final FluxTransformer transformer;
    private final AutoencoderKL vae;
    private final FlowMatchEulerScheduler scheduler;
    private final DType dtype;

    public FluxPipeline(FluxTextEncoders text, FluxTransformer transformer, AutoencoderKL vae, FlowMatchSchedulerConfig schedulerConfig) {
        checkWidths("FLUX pipeline", text, transformer);
        this.text = text;
        this.transformer = transformer;
        this.vae = vae;
        this.scheduler = new FlowMatchEulerScheduler(schedulerConfig, FluxFamily.SIGMA_SPACING);
        this.dtype = transformer.dtype();
    }

    /** A diffusers FLUX folder ({@code model_index.json} with transformer, vae, scheduler and both text encoders). */
    public static FluxPipeline load(Path folder, DType dtype, DeviceSpec device) {
        return load(folder, dtype, device, false);
    }

    /** As {@link #load(Path, DType, DeviceSpec)}, optionally with the transformer's blocks offloaded ({@link FluxTransformer#offload}). */
    public static FluxPipeline load(Path folder, DType dtype, DeviceSpec device, boolean offloadBlocks) {
        if (!Files.isRegularFile(folder.resolve("model_index.json"))) {
            throw new ModelFormatException(folder + ": no model_index.json (expected a diffusers FLUX folder)");
        }
        List<AutoCloseable> loaded = new ArrayList<>();
        try {
            FluxTextEncoders text = Modules.track(loaded, FluxTextEncoders.load(folder, dtype));
            FluxTransformer transformer = Modules.track(loaded, FluxTransformer.load(folder.resolve("transformer"), dtype, null, device, offloadBlocks));
            AutoencoderKL vae = Modules.track(loaded, AutoencoderKL.load(folder.resolve("vae"), dtype, device));
            FlowMatchSchedulerConfig sched = Files.isDirectory(folder.resolve("scheduler"))
                    ? FlowMatchSchedulerConfig.fromFile(folder.resolve("scheduler")) : defaultScheduler(transformer);
            return new FluxPipeline(text, transformer, vae, sched);
        } catch (RuntimeException e) {
            loaded.forEach(Modules::closeQuietly);
            throw e;
        }
    }

    /**
     * The original layout: a BFL transformer file, {@code ae.safetensors}, and a folder with the text encoders and
     * tokenizers ({@code tokenizer/}, {@code text_encoder/}, {@code tokenizer_2/}, {@code text_encoder_2/}).
     * The scheduler is FLUX's own for the detected variant.
     */
    public static FluxPipeline loadParts(Path transformerFile, Path aeFile, Path textEncoders, DType dtype, DeviceSpec device) {
        return loadParts(transformerFile, aeFile, textEncoders, dtype, device, false);
    }

    /** As {@link #loadParts(Path, Path, Path, DType, DeviceSpec)}, optionally with the transformer's blocks offloaded. */
    public static FluxPipeline loadParts(Path transformerFile, Path aeFile, Path textEncoders, DType dtype, DeviceSpec device, boolean offloadBlocks) {
        List<AutoCloseable> loaded = new ArrayList<>();
        try {
            FluxTextEncoders text = Modules.track(loaded, FluxTextEncoders.load(textEncoders, dtype));
            FluxTransformer transformer = Modules.track(loaded, FluxTransformer.load(transformerFile, dtype, null, device, offloadBlocks));
            AutoencoderKL vae = Modules.track(loaded, AutoencoderKL.load(aeFile, dtype, device));
            return new FluxPipeline(text, transformer, vae, defaultScheduler(transformer));
        } catch (RuntimeException e) {
            loaded.forEach(Modules::closeQuietly);
            throw e;
        }
    }

    private static FlowMatchSchedulerConfig defaultScheduler(FluxTransformer t) {
        return t.config().guidanceEmbeds() ? FlowMatchSchedulerConfig.fluxDev() : FlowMatchSchedulerConfig.fluxSchnell();
    }

    private static void checkWidths(String origin, FluxTextEncoders text, FluxTransformer t) {
        if (text.jointDim() != t.config().jointAttentionDim() || text.pooledDim() != t.config().pooledProjectionDim()) {
            throw new ModelFormatException(origin + ": text encoders give T5 width " + text.jointDim() + " and CLIP width " + text.pooledDim()
                    + ", but the transformer expects " + t.config().jointAttentionDim() + " and " + t.config().pooledProjectionDim());
        }
    }

    public FluxTransformer transformer() { return transformer; }
    public AutoencoderKL vae() { return vae; }
    public FluxTextEncoders textEncoders() { return text; }
    public FlowMatchEulerScheduler scheduler() { return scheduler; }

    @Override public int numGuidedBlocks() { return transformer.config().totalBlocks(); }
    @Override public DType dtype() { return dtype; }
    @Override public DeviceSpec device() { return transformer.device(); }

    /** Embedded guidance for guidance-distilled models (dev); schnell has no guidance embedding. */
    @Override
    public Set<Class<? extends GenerationOption>> supportedOptions() {
        return FluxFamily.options(transformer.config());
    }

    @Override
    public LoraReport applyLora(LoraAdapter lora, double scale, boolean strict) {
        return lora.applyTo(transformer, scale, strict);
    }

    // ---------------------------------------------------------------- steps

    @Override
    public FluxTextEncoders.Embeddings encode(GenerationSettings s) {
        return text.encode(s.prompts(), s.imagesPerPrompt(), s.maxSequenceLength());
    }

    @Override
    public Tensor delta(String pos, String neg) {
        return text.direction(transformer, pos, neg);
    }

    /** FLUX's sigmas for the request: {@code linspace(1, 1/N, N)} shifted by the scheduler (dynamically by image size). */
    @Override
    public Schedule schedule(GenerationSettings s) {
        return scheduler.schedule(s.steps(), Noise.fluxImageSeqLen(s.height(), s.width()));
    }

    /** Initial packed latents [B·n, N, 64] in the model dtype: the request's latents (unpacked [B·n, 16, h, w]), else seeded noise per image. Caller-owned. */
    @Override
    public Tensor noise(GenerationSettings s) {
        try (PointerScope scope = new PointerScope()) {
            long[] shape = Noise.fluxLatentShape(s.images(), s.height(), s.width());
            Tensor unpacked = io.mmdit4j.runtime.Scopes.adopt(s.initialLatents(shape, dtype));
            return Tensors.keep(FluxLatents.pack(unpacked).contiguous());
        }
    }

    @Override
    public Velocity velocity(GenerationSettings s, Schedule schedule, FluxTextEncoders.Embeddings emb, ModulationGuidance guidance,
                             ConditioningObserver observer) {
        int batch = s.images();
        EmbeddedGuidance g = s.option(EmbeddedGuidance.class);
        Tensor imgIds = null, guidanceArg = null;
        Rope rope = null;
        try (PointerScope scope = new PointerScope()) {
            imgIds = Tensors.keep(FluxInputs.imageIds(s.height() / 16, s.width() / 16));
            guidanceArg = transformer.config().guidanceEmbeds() ? FluxTimesteps.pipelineGuidance(g == null ? 3.5 : g.scale(), batch) : null;
            rope = transformer.rope(emb.textIds(), imgIds);
        } catch (RuntimeException e) {
            Native.release(imgIds);
            Native.release(guidanceArg);
            if (rope != null) rope.close();
            throw e;
        }
        Tensor ids = imgIds, gArg = guidanceArg;
        Rope r = rope;
        return new Velocity() {
            @Override
            public Tensor at(Tensor x, int i) {
                // pipelineTimestep and forward hand out owned tensors
                try (Tensor t = FluxTimesteps.pipelineTimestep(schedule, i, batch, Tensors.dtype(x))) {
                    return transformer.forward(new FluxInputs(x, emb.promptEmbeds(), emb.pooled(), t, gArg, ids, emb.textIds()), guidance, i, r,
                            observer);
                }
            }

            @Override
            public void close() {
                r.close();
                Native.release(ids);
                Native.release(gArg);
            }
        };
    }

    /** Packed latents → images [B, 3, H, W] in [0, 1], fp32 on the CPU. Caller-owned. */
    @Override
    public Tensor decode(Tensor packed, GenerationSettings s) {
        return decode(packed, s.width(), s.height());
    }

    /** Packed latents of a {@code width}×{@code height} image → images [B, 3, H, W] in [0, 1], fp32 on the CPU. Caller-owned. */
    public Tensor decode(Tensor packed, int width, int height) {
        try (PointerScope scope = new PointerScope()) {
            return vae.decodeToImages(FluxLatents.unpack(packed, 2L * (height / 16), 2L * (width / 16)));
        }
    }

    @Override
    public void modulations(BlockConditioning cond, ModulationVisitor visitor) {
        transformer.modulations(cond, visitor);
    }

    @Override
    public void close() {
        Modules.closeAll(text, transformer, vae);
    }
}
