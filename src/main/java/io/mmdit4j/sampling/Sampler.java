package io.mmdit4j.sampling;

import io.mmdit4j.runtime.Tensors;
import org.bytedeco.pytorch.Tensor;

import java.util.Arrays;

/**
 * The update rule of a denoising loop over its {@link Schedule}: how the latents move from step {@code i} to {@code i + 1}
 * given the model's prediction at step {@code i}, with whatever state the method keeps between steps. The rules:
 * <ul>
 *   <li>{@link Schedule} itself: diffusers' flow-matching Euler step on a velocity (stateless; FLUX, SD3, HunyuanVideo);</li>
 *   <li>{@link DenoisedEulerSampler}: the Euler step on a denoised (x0) prediction of EDM/Karras-style samplers (COSMOS);</li>
 *   <li>{@link FlowMatchLcmScheduler#sampler}: fresh seeded noise at every step (HiDream-I1 Fast / Dev);</li>
 *   <li>{@link UniPcMultistepScheduler#sampler}: a multistep predictor–corrector that keeps its history (HiDream-I1 Full).</li>
 * </ul>
 * A family picks its rule ({@code FamilyPipeline.sampler}). One instance serves one generation, its steps in order; whoever
 * asks for it closes it after the loop ({@link #close}: a multistep history, a noise stream), {@link Denoiser} closes
 * nothing it is given. Velocities follow diffusers' flow-matching sign ({@code x0 = x − σ·v}); a family whose transformer
 * predicts {@code −v} negates it first.
 */
public interface Sampler extends AutoCloseable {
    /** The sigmas and timesteps this rule steps over. */
    Schedule schedule();

    /** Number of denoising steps N. */
    default int steps() {
        return schedule().steps();
    }

    /** σ_i for i in [0, N] (σ_N is the terminal sigma): what the step listener reports after step i−1. */
    default float sigma(int i) {
        return schedule().sigma(i);
    }

    /**
     * The latents after step {@code i}, owned by the caller; temporaries are freed.
     *
     * @param prediction the model's prediction at step i, in the form this rule steps with (same shape as {@code sample});
     *                   not consumed
     * @param sample     the latents x_i (not consumed)
     */
    Tensor step(Tensor prediction, int i, Tensor sample);

    /** Releases the state kept between steps (nothing by default). */
    @Override
    default void close() {}

    /** A clear error unless the prediction and the sample are tensors of one shape (before any native work). */
    static void requireSameShape(Tensor prediction, Tensor sample) {
        if (prediction == null || prediction.isNull() || sample == null || sample.isNull()) {
            throw new IllegalArgumentException("prediction and sample are required");
        }
        long[] vs = Tensors.shape(prediction), ss = Tensors.shape(sample);
        if (!Arrays.equals(vs, ss)) {
            throw new IllegalArgumentException("prediction " + Tensors.shapeString(vs) + " and sample " + Tensors.shapeString(ss) + " differ in shape");
        }
    }
}
