package io.mmdit4j.sampling;

import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import java.util.concurrent.CancellationException;

/**
 * The denoising loop every family shares: for each step of a {@link Sampler} (a {@link Schedule}'s flow-matching Euler
 * step, or the family's own rule), the family's {@link Velocity} (its transformer forward, plus CFG or whatever it
 * combines), the sampler's step, the step's wall time, and the {@link StepListener}, which may cancel. The latents move to the model's device once, before the first step; each step
 * runs in its own native-memory scope, so nothing accumulates over the loop.
 */
public final class Denoiser {
    private Denoiser() {}

    /**
     * The model's prediction for latents {@code x} at step {@code step}, in the form the sampler steps with (a flow
     * velocity for {@link Schedule}, a denoised x0 for {@link DenoisedEulerSampler}); the result is owned by the caller.
     */
    @FunctionalInterface
    public interface Velocity {
        Tensor at(Tensor x, int step);
    }

    /**
     * Runs every step from {@code initial} (not consumed) and returns the final latents, owned by the caller, on
     * {@code device}. {@code stepNanos} (nullable, one slot per step) receives each step's wall time.
     *
     * @throws CancellationException when the listener returns false (nothing is leaked)
     */
    public static Tensor run(Sampler schedule, Tensor initial, Velocity velocity, DeviceSpec device, StepListener listener, long[] stepNanos) {
        if (stepNanos != null && stepNanos.length < schedule.steps()) {
            throw new IllegalArgumentException(stepNanos.length + " timing slots for " + schedule.steps() + " steps");
        }
        StepListener l = listener == null ? StepListener.NONE : listener;
        Tensor x = initial;
        try {
            if (device != null && !DeviceSpec.of(initial).equals(device)) { // the Euler step runs where the velocity is
                try (PointerScope scope = new PointerScope()) {
                    x = Tensors.keep(initial.to(device.torchDevice(), initial.scalar_type()));
                }
            }
            for (int i = 0; i < schedule.steps(); i++) {
                long t0 = System.nanoTime();
                try (PointerScope step = new PointerScope()) {
                    Tensor v = velocity.at(x, i);          // owned
                    Tensor next = schedule.step(v, i, x); // owned
                    v.close();
                    if (x != initial) x.close();
                    x = next;
                }
                long elapsed = System.nanoTime() - t0;
                if (stepNanos != null) stepNanos[i] = elapsed;
                if (!l.onStep(new StepListener.Step(i, schedule.steps(), schedule.sigma(i + 1), elapsed, x))) {
                    throw new CancellationException("generation cancelled after step " + (i + 1) + " of " + schedule.steps());
                }
            }
            Tensor out = x;
            x = initial; // handed to the caller, not released below
            return out;
        } finally {
            if (x != initial) Native.release(x);
        }
    }
}
