package io.mmdit4j.cli;

import io.mmdit4j.pipeline.ClassifierFreeGuidance;
import io.mmdit4j.pipeline.CustomSigmas;
import io.mmdit4j.pipeline.EmbeddedGuidance;
import io.mmdit4j.pipeline.FrameRate;
import io.mmdit4j.pipeline.GenerationRequest;
import io.mmdit4j.pipeline.SchedulerShift;
import io.mmdit4j.pipeline.VideoFrames;
import picocli.CommandLine.Option;

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
    @Option(names = "--negative-prompt", description = "negative prompt for classifier-free guidance: one, or one per prompt (default \"\")")
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

    /**
     * Sets the given options on {@code b}; {@code recorded} (a {@code --from} request, or null) supplies what a partial
     * option leaves open (the CFG scale of {@code --negative-prompt}).
     */
    void apply(GenerationRequest.Builder b, GenerationRequest recorded, Integer steps) {
        if (guidanceScale != null) b.option(new EmbeddedGuidance(guidanceScale));
        if (cfg != null || !negativePrompts.isEmpty()) {
            ClassifierFreeGuidance old = recorded != null ? recorded.option(ClassifierFreeGuidance.class) : null;
            if (cfg == null && old == null) throw new IllegalArgumentException("--negative-prompt needs classifier-free guidance: give --cfg");
            b.option(new ClassifierFreeGuidance(cfg != null ? cfg : old.scale(), !negativePrompts.isEmpty() ? negativePrompts
                    : old != null ? old.negativePrompts() : List.of()));
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
    }

    /** {@code 1.0,0.9454,...,0} → doubles (the terminal 0 is optional). */
    static double[] parseSigmas(String text) {
        String[] parts = text.split(",");
        double[] s = new double[parts.length];
        for (int i = 0; i < parts.length; i++) {
            try {
                s[i] = Double.parseDouble(parts[i].trim());
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--sigmas: '" + parts[i].trim() + "' is not a number (expected e.g. 1.0,0.9454,0.8959,0)");
            }
        }
        return s;
    }
}
