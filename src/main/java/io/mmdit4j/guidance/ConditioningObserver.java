package io.mmdit4j.guidance;

/**
 * Sees the per-block conditioning of a forward while it runs (inside the forward's scope: copy with
 * {@code clone()} and keep what must outlive the call). Used for golden checks and modulation statistics.
 */
@FunctionalInterface
public interface ConditioningObserver {
    void onConditioning(int step, BlockConditioning conditioning);
}
