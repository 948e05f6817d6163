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
     * @param previewer    makes {@link #preview()} from the latents (null: the family has no preview)
     */
    record Step(int index, int steps, float sigma, long elapsedNanos, Tensor latents, int chunk, int chunks,
                java.util.function.Function<Tensor, Tensor> previewer) {
        /** A step of a generation that runs as one batch. */
        public Step(int index, int steps, float sigma, long elapsedNanos, Tensor latents) {
            this(index, steps, sigma, elapsedNanos, latents, 0, 1, null);
        }

        public Step(int index, int steps, float sigma, long elapsedNanos, Tensor latents, int chunk, int chunks) {
            this(index, steps, sigma, elapsedNanos, latents, chunk, chunks, null);
        }

        /**
         * A cheap RGB preview of the current latents, {@code [B, 3, h, w]} float32 in [0, 1] on the CPU at the latent
         * resolution (1/8 of the image's side): the family's fixed linear map of latent channels to RGB, as other tools'
         * "latent preview" (no VAE); owned by the caller. Null when the family has none.
         */
        public Tensor preview() {
            return previewer == null ? null : previewer.apply(latents);
        }

        /** This step with a previewer. */
        public Step withPreview(java.util.function.Function<Tensor, Tensor> previewer) {
            return new Step(index, steps, sigma, elapsedNanos, latents, chunk, chunks, previewer);
        }

        public boolean isLast() {
            return index == steps - 1;
        }

        /** This step as a step of chunk {@code chunk} of {@code chunks}. */
        public Step inChunk(int chunk, int chunks) {
            return new Step(index, steps, sigma, elapsedNanos, latents, chunk, chunks, previewer);
        }
    }
}
