package io.mmdit4j.sampling;

import org.bytedeco.pytorch.Tensor;

/**
 * The update rule of a denoising loop: {@code x_{i+1}} from the model's flow velocity at step {@code i} and {@code x_i},
 * with whatever state the method keeps between steps (a multistep solver's history, a stochastic sampler's noise
 * stream). One sampler serves one generation, its steps in order; {@link Denoiser} closes nothing it is given.
 * The velocity is the flow prediction {@code v} with {@code x_σ ≈ x_0 + σ·v}'s sign convention of diffusers'
 * flow-matching schedulers ({@code x0 = x − σ·v}); a family whose transformer predicts {@code −v} negates it first.
 */
public interface Sampler extends AutoCloseable {
    /** {@code x_{i+1}}, owned by the caller; {@code velocity} and {@code sample} are not consumed. */
    Tensor step(Tensor velocity, int i, Tensor sample);

    @Override
    default void close() {}

    /** A clear error unless the velocity and the sample are tensors of one shape (before any native work). */
    static void requireSameShape(Tensor velocity, Tensor sample) {
        if (velocity == null || velocity.isNull() || sample == null || sample.isNull()) {
            throw new IllegalArgumentException("velocity and sample are required");
        }
        long[] vs = io.mmdit4j.runtime.Tensors.shape(velocity), ss = io.mmdit4j.runtime.Tensors.shape(sample);
        if (!java.util.Arrays.equals(vs, ss)) {
            throw new IllegalArgumentException("velocity " + io.mmdit4j.runtime.Tensors.shapeString(vs) + " and sample "
                    + io.mmdit4j.runtime.Tensors.shapeString(ss) + " differ in shape");
        }
    }

    /** diffusers' {@code FlowMatchEulerDiscreteScheduler.step} on {@code schedule} ({@link Schedule#step}): stateless. */
    static Sampler euler(Schedule schedule) {
        return schedule::step;
    }
}
