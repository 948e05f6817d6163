package io.mmdit4j.research;

/** The settings every cell of a sweep shares (after the model descriptor's defaults are applied). */
public record SweepSettings(String model, String family, String dtype, int width, int height, int steps, double guidanceScale,
                            int maxSequenceLength) {}
