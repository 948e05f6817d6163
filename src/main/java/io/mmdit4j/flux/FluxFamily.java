package io.mmdit4j.flux;

import io.mmdit4j.guidance.GuidanceDefaults;
import io.mmdit4j.models.DemoModels;
import io.mmdit4j.models.ModelDescriptor;
import io.mmdit4j.models.ModelFamily;
import io.mmdit4j.pipeline.TrueCfg;
import io.mmdit4j.pipeline.EmbeddedGuidance;
import io.mmdit4j.pipeline.FamilyPipeline;
import io.mmdit4j.pipeline.GenerationDefaults;
import io.mmdit4j.pipeline.GenerationOption;
import io.mmdit4j.pipeline.GenerationSettings;
import io.mmdit4j.pipeline.GivenDraws;
import io.mmdit4j.pipeline.InitImage;
import io.mmdit4j.pipeline.InpaintMask;
import io.mmdit4j.pipeline.InvalidRequestException;
import io.mmdit4j.pipeline.LoadOptions;
import io.mmdit4j.pipeline.MemoryModel;
import io.mmdit4j.vae.AutoencoderKL;
import io.mmdit4j.vae.VaeConfig;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.sampling.FlowMatchEulerScheduler;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;

/** FLUX.1 (schnell, dev): diffusers {@code FluxPipeline} folders, or an original BFL transformer file with its VAE and text encoders. */
public final class FluxFamily implements ModelFamily {
    public static final FluxFamily INSTANCE = new FluxFamily();
    /** FluxPipeline passes {@code sigmas = linspace(1, 1/N, N)} and {@code mu}. */
    public static final FlowMatchEulerScheduler.Spacing SIGMA_SPACING = FlowMatchEulerScheduler.Spacing.LINSPACE_TO_ONE_OVER_N;

    private FluxFamily() {}

    @Override
    public String name() {
        return "flux";
    }

    @Override
    public boolean loadsPipelineClass(String className) {
        return className.isEmpty() || className.startsWith("Flux");
    }

    @Override
    public boolean recognizesWeights(Set<String> tensorNames) {
        boolean bfl = tensorNames.stream().anyMatch(k -> k.startsWith("double_blocks.") || k.startsWith(FluxKeyMap.COMFY_PREFIX + "double_blocks."));
        boolean diffusers = tensorNames.contains("x_embedder.weight") && tensorNames.stream().anyMatch(k -> k.startsWith("single_transformer_blocks."));
        return bfl || diffusers;
    }

    /** METHOD.md §4: FLUX w 3 from block 5; FLUX.1-dev's sampler defaults. */
    @Override
    public GenerationDefaults defaults() {
        return GenerationDefaults.of(1024, 1024, 28, 512, DType.F32, GuidanceDefaults.of(3.0, "5-"), new EmbeddedGuidance(3.5));
    }

    @Override
    public boolean supportsLora() {
        return true;
    }

    @Override
    public boolean supportsBlockOffload() {
        return true;
    }

    /** Embedded guidance only for guidance-distilled checkpoints (dev); schnell has no guidance embedding. */
    @Override
    public Capabilities capabilities(Path model, LoadOptions options) {
        FluxConfig c = FluxTransformer.inspect(model, null);
        return new Capabilities(c.totalBlocks(), options(c));
    }

    /** The transformer's configuration from its headers; the VAE's from its config (FLUX's own for a BFL file without one). */
    @Override
    public MemoryModel memoryModel(Path model, LoadOptions o) {
        VaeConfig vae = Files.isDirectory(model.resolve("vae")) ? AutoencoderKL.inspect(model.resolve("vae"))
                : o.vae() != null ? AutoencoderKL.inspect(o.vae()) : VaeConfig.flux();
        return new FluxMemory(FluxTransformer.inspect(model, null), vae, o.dtype() != null ? o.dtype() : DType.F32);
    }

    /**
     * Options every FLUX model takes: true classifier-free guidance (diffusers' {@code true_cfg_scale} with a negative prompt),
     * image-to-image and inpainting (the VAE's encoder), given draws (cross-checks).
     */
    private static final Set<Class<? extends GenerationOption>> COMMON = Set.of(TrueCfg.class, InitImage.class, InpaintMask.class,
            GivenDraws.class);

    static Set<Class<? extends GenerationOption>> options(FluxConfig c) {
        if (!c.guidanceEmbeds()) return COMMON;
        Set<Class<? extends GenerationOption>> all = new java.util.HashSet<>(COMMON);
        all.add(EmbeddedGuidance.class);
        return Set.copyOf(all);
    }

    @Override
    public void validate(GenerationSettings s) {
        if (s.maxSequenceLength() > 512) throw new InvalidRequestException("max sequence length must be in 1..512 (FLUX's T5), got " + s.maxSequenceLength());
    }

    /** {@code --offload text}: CLIP and T5 are released after each request's text phase (and loaded again by the next). */
    @Override
    public boolean supportsOffload() {
        return true;
    }

    @Override
    public FamilyPipeline<?> load(Path model, LoadOptions o) {
        if (Files.isRegularFile(model.resolve("model_index.json"))) {
            if (o.vae() != null || o.textEncoders() != null) {
                throw new InvalidRequestException("--vae / --text-encoders are for an original single-file FLUX transformer; " + model
                        + " is a diffusers folder with its own");
            }
            return FluxPipeline.load(model, o.dtype(), o.device(), o.offloadBlocks(), Boolean.TRUE.equals(o.offloadText()));
        }
        if (o.vae() == null || o.textEncoders() == null) {
            throw new InvalidRequestException(model + ": a single-file FLUX transformer needs --vae (ae.safetensors) and --text-encoders "
                    + "(a folder with tokenizer/, text_encoder/, tokenizer_2/, text_encoder_2/)");
        }
        return FluxPipeline.loadParts(model, o.vae(), o.textEncoders(), o.dtype(), o.device(), o.offloadBlocks(), Boolean.TRUE.equals(o.offloadText()));
    }

    @Override
    public void writeDemo(ModelDescriptor d, Path root, Path tokenizers) throws IOException {
        DemoModels.writeFlux(d, root, tokenizers);
    }
}
