package io.mmdit4j.pipeline;

import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * A family-specific setting of a generation request, as a typed extension of {@link GenerationRequest}: classifier-free
 * guidance, embedded guidance, explicit sigmas, a scheduler shift, a video's length. A family states which it supports
 * ({@link FamilyPipeline#supportedOptions}); any other is rejected with {@link UnsupportedOptionException}, never
 * ignored. Options are recorded in the settings JSON of every image ({@link GenerationOptions} reads them back).
 */
public interface GenerationOption {
    /** What the option is called in messages, with its command-line flag, e.g. {@code classifier-free guidance (--cfg)}. */
    default String description() {
        return GenerationOptions.describe(getClass());
    }

    /** Writes the option's keys into a settings record (the same keys a model descriptor's {@code defaults} uses). */
    void write(ObjectNode settings);

    /**
     * The option of images {@code from..to-1} made as a request of their own ({@link GenerationSettings#forImage},
     * {@link GenerationSettings#chunk}): the same option unless it holds something per image (init images, masks,
     * {@link StepNoise}), which keeps those rows.
     */
    default GenerationOption forImages(int from, int to) {
        return this;
    }

    /** The {@code [width, height]} this option gives a request that leaves its size open (an init image's), or null. */
    default int[] impliedSize() {
        return null;
    }
}
