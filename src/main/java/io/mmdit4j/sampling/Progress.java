package io.mmdit4j.sampling;

/** Called by a pipeline after every denoising step; return false to cancel (the generation throws CancellationException). */
@FunctionalInterface
public interface Progress {
    boolean onStep(int step, int steps, float sigma, long elapsedNanos);

    Progress NONE = (step, steps, sigma, elapsed) -> true;
}
