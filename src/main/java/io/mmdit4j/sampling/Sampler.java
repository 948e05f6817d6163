package io.mmdit4j.sampling;

import org.bytedeco.pytorch.Tensor;

/**
 * The update rule of a denoising loop over its schedule: how the latents move from step {@code i} to {@code i + 1} given the
 * model's prediction at step {@code i}. {@link Schedule} is diffusers' flow-matching Euler step on a velocity;
 * {@link DenoisedEulerSampler} is the Euler step on a denoised (x0) prediction of EDM/Karras-style samplers (COSMOS). A
 * family picks its rule ({@code FamilyPipeline.sampler}); one instance serves one request, so a multistep rule may keep the
 * history it needs, and a stochastic one its noise stream (released by {@link #close}, which the generation calls after the loop).
 */
public interface Sampler extends AutoCloseable {
    /** Number of denoising steps N. */
    int steps();

    /** σ_i for i in [0, N] (σ_N is the terminal sigma): what the step listener reports after step i−1. */
    float sigma(int i);

    /**
     * The latents after step {@code i}, owned by the caller; temporaries are freed.
     *
     * @param prediction the model's prediction at step i, in the form this rule steps with (same shape as {@code sample})
     * @param sample     the latents x_i (not consumed)
     */
    Tensor step(Tensor prediction, int i, Tensor sample);

    /** A rule that steps over a {@link Schedule}'s sigmas: its steps and sigmas are the schedule's. */
    interface OnSchedule extends Sampler {
        Schedule schedule();

        @Override
        default int steps() {
            return schedule().steps();
        }

        @Override
        default float sigma(int i) {
            return schedule().sigma(i);
        }
    }

    /** A clear error unless the prediction and the sample are tensors of one shape (before any native work). */
    static void requireSameShape(Tensor prediction, Tensor sample) {
        if (prediction == null || prediction.isNull() || sample == null || sample.isNull()
                || !java.util.Arrays.equals(io.mmdit4j.runtime.Tensors.shape(prediction), io.mmdit4j.runtime.Tensors.shape(sample))) {
            throw new IllegalArgumentException("the model's prediction and the sample must be tensors of one shape");
        }
    }

    /** Releases what the rule holds (a noise stream); nothing by default. */
    @Override
    default void close() {}
}
