package io.mmdit4j.cli;

import io.mmdit4j.pipeline.ClassifierFreeGuidance;
import io.mmdit4j.pipeline.CustomSigmas;
import io.mmdit4j.pipeline.EmbeddedGuidance;
import io.mmdit4j.pipeline.FrameRate;
import io.mmdit4j.pipeline.GenerationRequest;
import io.mmdit4j.pipeline.InitImage;
import io.mmdit4j.pipeline.InpaintMask;
import io.mmdit4j.pipeline.NegativePrompts;
import io.mmdit4j.pipeline.TrueCfg;
import io.mmdit4j.pipeline.ScaleWise;
import io.mmdit4j.pipeline.SchedulerShift;
import io.mmdit4j.pipeline.VideoFrames;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The family options of a request as command-line flags: each given flag becomes its typed
 * {@link io.mmdit4j.pipeline.GenerationOption}, which a model that does not take it refuses with a clear message.
 */
final class FamilyOptions {
    @Option(names = "--guidance", description = "embedded guidance scale (FLUX.1-dev, HunyuanVideo; default: the model's)")
    Double guidanceScale;
    @Option(names = "--cfg", description = "classifier-free guidance scale, on when > 1 (SD3 / SD3.5, HiDream, COSMOS; default: the model's)")
    Double cfg;
    @Option(names = "--true-cfg", description = "FLUX: true classifier-free guidance scale with --negative-prompt, on when > 1 (diffusers' "
            + "true_cfg_scale; the transformer runs twice per step)")
    Double trueCfg;
    @Option(names = "--negative-prompt", description = "negative prompt for --cfg / --true-cfg: one, or one per prompt (default \"\")")
    List<String> negativePrompts = new ArrayList<>();
    @Option(names = "--sigmas", description = "explicit sigmas used as given (no shift), e.g. 1.0,0.9454,0.8959,0.7904,0.7371,0.6022,0 (SD3)")
    String sigmas;
    @Option(names = "--shift", description = "static scheduler shift instead of the model's scheduler config (SD3, HiDream)")
    Double shift;
    @Option(names = "--sample-size", description = "area-preserving resize: the request's size is scaled to the area of a PIXELS² image keeping its "
            + "aspect ratio, rounded down to multiples of 16 (HiDream; default: the model's, 1024)")
    Integer sampleSize;
    @Option(names = "--frames", description = "video frames, 4k+1 (HunyuanVideo; default: the model's, 61)")
    Integer frames;
    @Option(names = "--fps", description = "frames per second of the written video (default: the model's, 15)")
    Integer fps;
    @Option(names = "--init-image", paramLabel = "IMG", description = "image-to-image: start from this picture (repeatable: image i uses picture i mod n); "
            + "the size defaults to its own (FLUX, SD3, HiDream)")
    List<Path> initImages = new ArrayList<>();
    @Option(names = "--strength", description = "image-to-image strength in (0, 1]: how much of the schedule runs (default 0.6, diffusers')")
    Double strength;
    @Option(names = "--mask", paramLabel = "IMG", description = "inpainting: grey mask for --init-image, white (>= 128) repaints, black keeps (repeatable; FLUX, SD3, HiDream)")
    List<Path> masks = new ArrayList<>();
    @Option(names = "--scales", description = "scale-wise sampling (SD3): latent sides per step, e.g. 64,80,96,112,128,128 (image = 8x the last), "
            + "or 'fixed' (every step at --width/--height, the DMD2 recipe's [128]*6)")
    String scales;
    @Option(names = "--scales-fp16-noise", description = "scale-wise sampling: round each step's noise to float16, as the reference's fp16 recipe does")
    boolean scalesFp16Noise;

    /**
     * Sets the given options on {@code b}; {@code recorded} (a {@code --from} request, or null) supplies what a partial
     * option leaves open (the CFG scale of {@code --negative-prompt}).
     */
    void apply(GenerationRequest.Builder b, GenerationRequest recorded, Integer steps) {
        if (guidanceScale != null) b.option(new EmbeddedGuidance(guidanceScale));
        if (cfg != null && trueCfg != null) throw new IllegalArgumentException("--cfg (SD3, COSMOS) and --true-cfg (FLUX): give the model's one");
        if (cfg != null || trueCfg != null || !negativePrompts.isEmpty()) {
            NegativePrompts old = recorded == null ? null : recorded.option(ClassifierFreeGuidance.class) != null
                    ? recorded.option(ClassifierFreeGuidance.class) : recorded.option(TrueCfg.class);
            if (cfg == null && trueCfg == null && old == null) {
                throw new IllegalArgumentException("--negative-prompt needs classifier-free guidance: give --cfg (SD3, COSMOS) or --true-cfg (FLUX)");
            }
            List<String> negatives = !negativePrompts.isEmpty() ? negativePrompts : old != null ? old.negativePrompts() : List.of();
            if (cfg != null) b.option(new ClassifierFreeGuidance(cfg, negatives));
            else if (trueCfg != null) b.option(new TrueCfg(trueCfg, negatives));
            else b.option(old.withNegatives(negatives));
        }
        if (sigmas != null) {
            CustomSigmas s = CustomSigmas.of(parseSigmas(sigmas));
            b.option(s);
            if (steps == null) b.steps(s.steps());
        }
        if (shift != null) b.option(new SchedulerShift(shift));
        if (sampleSize != null) b.option(new io.mmdit4j.pipeline.SampleSize(sampleSize));
        if (frames != null) b.option(new VideoFrames(frames));
        if (fps != null) b.option(new FrameRate(fps));
        InitImage oldInit = recorded != null ? recorded.option(InitImage.class) : null;
        if (!initImages.isEmpty()) b.option(InitImage.of(initImages, strength != null ? strength : oldInit != null ? oldInit.strength() : DEFAULT_STRENGTH));
        else if (strength != null) {
            if (oldInit == null) throw new IllegalArgumentException("--strength is for image-to-image: give --init-image");
            b.option(new InitImage(oldInit.images(), strength, oldInit.sha256()));
        }
        if (!masks.isEmpty()) b.option(InpaintMask.of(masks));
        if (scales != null) b.option(parseScales(scales).withHalfNoise(scalesFp16Noise));
        else if (scalesFp16Noise) {
            ScaleWise old = recorded != null ? recorded.option(ScaleWise.class) : null;
            if (old == null) throw new IllegalArgumentException("--scales-fp16-noise is for scale-wise sampling: give --scales");
            b.option(old.withHalfNoise(true));
        }
    }

    /** diffusers' default strength of its img2img and inpainting pipelines. */
    static final double DEFAULT_STRENGTH = 0.6;

    /** {@code fixed} or {@code 64,80,96} → the scale-wise option. */
    static ScaleWise parseScales(String text) {
        if (text.trim().equals("fixed")) return ScaleWise.fixed();
        return ScaleWise.of(numbers(text, "--scales", "a whole number", "64,80,96,112,128,128 or fixed").stream().mapToInt(Double::intValue).toArray());
    }

    /** {@code 1.0,0.9454,...,0} → doubles (the terminal 0 is optional). */
    static double[] parseSigmas(String text) {
        return numbers(text, "--sigmas", "a number", "1.0,0.9454,0.8959,0").stream().mapToDouble(Double::doubleValue).toArray();
    }

    /** Comma-separated numbers of a flag; whole numbers only when {@code what} says so. */
    private static List<Double> numbers(String text, String flag, String what, String example) {
        List<Double> out = new ArrayList<>();
        for (String part : text.split(",")) {
            String p = part.trim();
            try {
                out.add(what.startsWith("a whole") ? (double) Integer.parseInt(p) : Double.parseDouble(p));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(flag + ": '" + p + "' is not " + what + " (expected e.g. " + example + ")");
            }
        }
        return out;
    }
}
