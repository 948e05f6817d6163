package io.mmdit4j.sampling;

import org.bytedeco.pytorch.Tensor;

/**
 * Called by the {@link Denoiser} after every denoising step; return false to cancel (the generation then throws
 * {@link java.util.concurrent.CancellationException} and frees what it holds).
 */
@FunctionalInterface
public interface StepListener {
    boolean onStep(Step step);

    /** Listens to nothing, never cancels. */
    StepListener NONE = step -> true;

    /**
     * One finished step.
     *
     * @param index        0-based step index
     * @param steps        steps of the run
     * @param sigma        the noise level reached ({@code σ_{index+1}}; 0 after the last step)
     * @param elapsedNanos wall time of this step
     * @param latents      the current latents in the family's own layout (FLUX: packed tokens), borrowed: valid only
     *                     during the call (clone it to keep it, e.g. for a preview)
     * @param chunk        the 0-based chunk of images this step belongs to (large requests run in chunks, each through
     *                     every step; see {@code pipeline.MemoryPlanner})
     * @param chunks       chunks of the generation (1 when it runs as one batch)
     */
    record Step(int index, int steps, float sigma, long elapsedNanos, Tensor latents, int chunk, int chunks) {
        /** A step of a generation that runs as one batch. */
        public Step(int index, int steps, float sigma, long elapsedNanos, Tensor latents) {
            this(index, steps, sigma, elapsedNanos, latents, 0, 1);
        }

        public boolean isLast() {
            return index == steps - 1;
        }

        /** This step as a step of chunk {@code chunk} of {@code chunks}. */
        public Step inChunk(int chunk, int chunks) {
            return new Step(index, steps, sigma, elapsedNanos, latents, chunk, chunks);
        }
    }
}
