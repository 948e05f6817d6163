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
     */
    record Step(int index, int steps, float sigma, long elapsedNanos, Tensor latents) {
        public boolean isLast() {
            return index == steps - 1;
        }
    }
}
