package io.mmdit4j.sd3;

import io.mmdit4j.guidance.GuidanceDefaults;
import io.mmdit4j.models.ModelFamily;
import io.mmdit4j.pipeline.ClassifierFreeGuidance;
import io.mmdit4j.pipeline.CustomSigmas;
import io.mmdit4j.pipeline.FamilyPipeline;
import io.mmdit4j.pipeline.GenerationDefaults;
import io.mmdit4j.pipeline.GenerationOption;
import io.mmdit4j.pipeline.GenerationSettings;
import io.mmdit4j.pipeline.GivenDraws;
import io.mmdit4j.pipeline.InitImage;
import io.mmdit4j.pipeline.InpaintMask;
import io.mmdit4j.pipeline.ScaleWise;
import io.mmdit4j.pipeline.InvalidRequestException;
import io.mmdit4j.pipeline.LoadOptions;
import io.mmdit4j.pipeline.MemoryModel;
import io.mmdit4j.vae.AutoencoderKL;
import io.mmdit4j.vae.VaeConfig;
import io.mmdit4j.pipeline.SchedulerShift;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.sampling.FlowMatchEulerScheduler;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;

/** SD3 / SD3.5 (Large, Medium, SD3 Medium): diffusers {@code StableDiffusion3Pipeline} folders. */
public final class Sd3Family implements ModelFamily {
    public static final Sd3Family INSTANCE = new Sd3Family();
    /** The {@code _class_name} its diffusers folders are checked for. */
    public static final String CLASS_NAME = "StableDiffusion3Pipeline";
    /** StableDiffusion3Pipeline passes no sigmas: the scheduler's own spacing. */
    public static final FlowMatchEulerScheduler.Spacing SIGMA_SPACING = FlowMatchEulerScheduler.Spacing.SCHEDULER_DEFAULT;
    static final Set<Class<? extends GenerationOption>> OPTIONS = Set.of(ClassifierFreeGuidance.class, CustomSigmas.class, SchedulerShift.class,
            InitImage.class, InpaintMask.class, ScaleWise.class, GivenDraws.class);

    private Sd3Family() {}

    @Override
    public boolean supportsBlockOffload() {
        return true;
    }

    @Override
    public String name() {
        return "sd3";
    }

    @Override
    public boolean loadsPipelineClass(String className) {
        return className.startsWith("StableDiffusion3");
    }

    @Override
    public boolean recognizesWeights(Set<String> tensorNames) {
        return tensorNames.stream().anyMatch(k -> k.startsWith("joint_blocks.") || k.startsWith(Sd3KeyMap.PREFIX + "joint_blocks."));
    }

    /** diffusers' defaults (CFG 7, negative prompt ""); METHOD.md §4: SD3.5 w 2 from block 2. */
    @Override
    public GenerationDefaults defaults() {
        return GenerationDefaults.of(1024, 1024, 28, 256, DType.F32, GuidanceDefaults.of(2.0, "2-"), new ClassifierFreeGuidance(7.0));
    }

    @Override
    public boolean supportsLora() {
        return true;
    }

    @Override
    public Capabilities capabilities(Path model, LoadOptions options) {
        return new Capabilities(Sd3Transformer.inspect(Files.isDirectory(model.resolve("transformer")) ? model.resolve("transformer") : model)
                .numGuidedBlocks(), OPTIONS);
    }

    /** The transformer's configuration from its headers; the VAE's from its config (SD3's own without one). */
    @Override
    public MemoryModel memoryModel(Path model, LoadOptions o) {
        Sd3Config c = Sd3Transformer.inspect(Files.isDirectory(model.resolve("transformer")) ? model.resolve("transformer") : model);
        VaeConfig vae = Files.isDirectory(model.resolve("vae")) ? AutoencoderKL.inspect(model.resolve("vae")) : VaeConfig.sd3();
        return new Sd3Memory(c, vae, o.dtype() != null ? o.dtype() : DType.F32);
    }

    @Override
    public void validate(GenerationSettings s) {
        if (s.maxSequenceLength() > 512) throw new InvalidRequestException("max sequence length must be in 1..512 (SD3's T5), got " + s.maxSequenceLength());
        ScaleWise swd = s.option(ScaleWise.class);
        if (swd != null) {
            if (s.option(InitImage.class) != null) throw new InvalidRequestException("scale-wise sampling (--scales) starts from noise: not with --init-image");
            swd.check(s.steps(), s.width(), s.height());
        }
    }

    /** {@code --offload text}: CLIP-L, CLIP-G and T5 are released after each request's text phase (and loaded again by the next). */
    @Override
    public boolean supportsOffload() {
        return true;
    }

    @Override
    public FamilyPipeline<?> load(Path model, LoadOptions o) {
        if (o.vae() != null || o.textEncoders() != null) {
            throw new InvalidRequestException("--vae / --text-encoders are for an original single-file FLUX transformer; SD3 loads from a "
                    + "diffusers folder (model_index.json)");
        }
        if (!Files.isDirectory(model)) {
            throw new InvalidRequestException(model + ": SD3 generation needs a diffusers folder (model_index.json with the text encoders, "
                    + "tokenizers and VAE), not a single transformer file");
        }
        return Sd3Pipeline.load(model, o.dtype(), o.device(), o.offloadBlocks(), Boolean.TRUE.equals(o.offloadText()));
    }
}
