package io.mmdit4j.hunyuan;

import io.mmdit4j.guidance.GuidanceDefaults;
import io.mmdit4j.models.DemoModels;
import io.mmdit4j.models.ModelDescriptor;
import io.mmdit4j.models.ModelFamily;
import io.mmdit4j.pipeline.EmbeddedGuidance;
import io.mmdit4j.pipeline.FamilyPipeline;
import io.mmdit4j.pipeline.GenerationDefaults;
import io.mmdit4j.pipeline.GenerationOption;
import io.mmdit4j.pipeline.GenerationSettings;
import io.mmdit4j.pipeline.InvalidRequestException;
import io.mmdit4j.pipeline.LoadOptions;
import io.mmdit4j.pipeline.MemoryModel;
import io.mmdit4j.hunyuan.vae.HunyuanVideoVaeConfig;
import io.mmdit4j.pipeline.FrameRate;
import io.mmdit4j.pipeline.VideoFrames;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.sampling.FlowMatchEulerScheduler;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;

/** HunyuanVideo text-to-video: diffusers {@code HunyuanVideoPipeline} folders. */
public final class HunyuanVideoFamily implements ModelFamily {
    public static final HunyuanVideoFamily INSTANCE = new HunyuanVideoFamily();
    /** The {@code _class_name} of its diffusers folders. */
    public static final String CLASS_NAME = "HunyuanVideoPipeline";
    /** HunyuanVideoPipeline passes {@code sigmas = linspace(1, 0, N+1)[:-1]} and no {@code mu}. */
    public static final FlowMatchEulerScheduler.Spacing SIGMA_SPACING = FlowMatchEulerScheduler.Spacing.LINSPACE_TO_ZERO_EXCLUSIVE;
    static final Set<Class<? extends GenerationOption>> OPTIONS = Set.of(EmbeddedGuidance.class, VideoFrames.class, FrameRate.class,
            io.mmdit4j.pipeline.InitImage.class);

    private HunyuanVideoFamily() {}

    @Override
    public String name() {
        return "hunyuan-video";
    }

    @Override
    public boolean loadsPipelineClass(String className) {
        return className.equals(CLASS_NAME);
    }

    @Override
    public boolean video() {
        return true;
    }

    /** The reference's settings (512×320, 61 frames at 15 fps, 30 steps, embedded guidance 6); METHOD.md §4: w 3.5 from block 5. */
    @Override
    public GenerationDefaults defaults() {
        return GenerationDefaults.of(512, 320, 30, 256, DType.F32, GuidanceDefaults.of(3.5, "5-"), new EmbeddedGuidance(6.0),
                new VideoFrames(61), new FrameRate(15));
    }

    @Override
    public Capabilities capabilities(Path model, LoadOptions options) {
        return new Capabilities(HunyuanVideoTransformer.inspect(model.resolve("transformer")).totalBlocks(), OPTIONS);
    }

    /** The transformer's configuration from its headers; the VAE's from its config.json (the released VAE's without one). */
    @Override
    public MemoryModel memoryModel(Path model, LoadOptions o) {
        Path vaeJson = model.resolve("vae").resolve("config.json");
        HunyuanVideoVaeConfig vae = Files.isRegularFile(vaeJson) ? HunyuanVideoVaeConfig.read(vaeJson) : HunyuanVideoVaeConfig.hunyuanVideo();
        return new HunyuanVideoMemory(HunyuanVideoTransformer.inspect(model.resolve("transformer")), vae, o.dtype() != null ? o.dtype() : DType.F32);
    }

    /** Frames {@code 4k + 1}; sizes multiples of 16. */
    @Override
    public void validate(GenerationSettings s) {
        HunyuanVideoPipeline.checkSize(s.width(), s.height());
        HunyuanVideoPipeline.checkFrames(HunyuanVideoPipeline.frames(s));
    }

    @Override
    public boolean supportsBlockOffload() {
        return true;
    }

    /** {@code --offload text}: the Llama and CLIP-L are released after each request's text phase (and loaded again by the next). */
    @Override
    public boolean supportsOffload() {
        return true;
    }

    @Override
    public FamilyPipeline<?> load(Path model, LoadOptions o) {
        if (o.vae() != null || o.textEncoders() != null) {
            throw new InvalidRequestException("--vae / --text-encoders are for an original single-file FLUX transformer; HunyuanVideo loads "
                    + "from a diffusers folder (model_index.json)");
        }
        if (!Files.isDirectory(model)) {
            throw new InvalidRequestException(model + ": HunyuanVideo generation needs a diffusers folder (model_index.json with transformer/, "
                    + "vae/, text encoders and tokenizers), not a single file");
        }
        return HunyuanVideoPipeline.load(model, o.dtype(), o.device(), o.offloadBlocks(), Boolean.TRUE.equals(o.offloadText()));
    }

    @Override
    public void writeDemo(ModelDescriptor d, Path root, Path tokenizers) throws IOException {
        DemoModels.writeHunyuanVideo(d, root, tokenizers);
    }
}
