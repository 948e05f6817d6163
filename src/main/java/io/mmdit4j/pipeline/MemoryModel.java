package io.mmdit4j.pipeline;

/**
 * What one generation of a family needs in memory besides the weights, from the model's configuration alone (no
 * weights loaded): the same per-block activation formulas the real-size meta dry runs of {@code mmdit inspect --config}
 * print, plus the decoder's peak. Estimates for planning, not measurements.
 */
public interface MemoryModel {
    /**
     * Peak bytes live while a chunk of {@code images} images (or videos) of {@code s} is made: the text conditioning and
     * latents it keeps, plus the larger of one transformer step (its CFG rows, the widest block's activations, the
     * attention scores where the math kernel runs) and the decode.
     */
    long workingBytes(GenerationSettings s, int images);

    /** Bytes one image (or video) of {@code s} keeps until the generation returns: its decoded output and final latents. */
    long resultBytes(GenerationSettings s);
}
