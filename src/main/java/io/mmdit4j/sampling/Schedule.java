package io.mmdit4j.sampling;

import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.util.Arrays;
import java.util.Locale;

import static org.bytedeco.pytorch.global.torch.scalar_tensor;

/**
 * A flow-matching schedule: N+1 float32 sigmas ending with the terminal 0 and the N float32 timesteps
 * ({@code σ_i·num_train_timesteps}) the scheduler hands to the pipeline, plus diffusers' Euler step.
 * Immutable; the arrays returned are copies.
 */
public final class Schedule implements Sampler {
    private final float[] sigmas;
    private final float[] timesteps;

    /**
     * @param sigmas    N+1 values, the last one the terminal sigma (0)
     * @param timesteps N values
     */
    public Schedule(float[] sigmas, float[] timesteps) {
        if (sigmas == null || timesteps == null) throw new IllegalArgumentException("sigmas and timesteps are required");
        if (timesteps.length < 1) throw new IllegalArgumentException("a schedule needs at least one step");
        if (sigmas.length != timesteps.length + 1) {
            throw new IllegalArgumentException("a schedule of " + timesteps.length + " steps needs " + (timesteps.length + 1)
                    + " sigmas (with the terminal one), got " + sigmas.length);
        }
        for (int i = 0; i < sigmas.length; i++) {
            if (!Float.isFinite(sigmas[i])) throw new IllegalArgumentException("sigma " + i + " is " + sigmas[i]);
        }
        for (int i = 0; i < timesteps.length; i++) {
            if (!Float.isFinite(timesteps[i])) throw new IllegalArgumentException("timestep " + i + " is " + timesteps[i]);
        }
        this.sigmas = sigmas.clone();
        this.timesteps = timesteps.clone();
    }

    /** {@code timesteps = σ·T} (float32) and {@code sigmas = cat(σ, [0])}, as {@code set_timesteps} ends. */
    static Schedule withTerminalZero(float[] sigmas, int numTrainTimesteps) {
        float t = numTrainTimesteps;
        float[] ts = new float[sigmas.length];
        for (int i = 0; i < ts.length; i++) ts[i] = sigmas[i] * t;
        return new Schedule(Arrays.copyOf(sigmas, sigmas.length + 1), ts);
    }

    /** As a {@link Sampler}, a schedule is diffusers' flow-matching Euler step over itself ({@link #step}). */
    @Override
    public Schedule schedule() { return this; }

    /** Number of denoising steps N. */
    @Override
    public int steps() { return timesteps.length; }

    /** σ_i for i in [0, N] (σ_N is the terminal 0). */
    @Override
    public float sigma(int i) {
        if (i < 0 || i >= sigmas.length) throw new IndexOutOfBoundsException("sigma index " + i + " outside [0, " + (sigmas.length - 1) + "]");
        return sigmas[i];
    }

    /** The timestep of step i (σ_i·T as the scheduler gives it; the FLUX pipeline then divides it by 1000, see {@link FluxTimesteps}). */
    public float timestep(int i) {
        checkStep(i);
        return timesteps[i];
    }

    /** {@code σ_{i+1} − σ_i} in float32 (negative), the Euler step size. */
    public float dt(int i) {
        checkStep(i);
        return sigmas[i + 1] - sigmas[i];
    }

    public float[] sigmas() { return sigmas.clone(); }
    public float[] timesteps() { return timesteps.clone(); }

    /** The sigmas as a float32 tensor [N+1], owned by the caller. */
    public Tensor sigmasTensor() {
        return Tensors.fromFloats(sigmas, sigmas.length);
    }

    /** The timesteps as a float32 tensor [N], owned by the caller. */
    public Tensor timestepsTensor() {
        return Tensors.fromFloats(timesteps, timesteps.length);
    }

    /**
     * diffusers' {@code FlowMatchEulerDiscreteScheduler.step} for step {@code i}:
     * {@code prev = sample.float() + (σ_{i+1} − σ_i)·velocity}, cast to the velocity's dtype. As in diffusers,
     * {@code σ_{i+1} − σ_i} is a 0-dim float32 tensor, so with float32 velocities everything is float32, and with
     * bf16/fp16 velocities libtorch's type promotion forms the product in the velocity's dtype (the step size rounded
     * to it) before the float32 addition, exactly as the reference does. The result is owned by the caller;
     * temporaries are freed.
     *
     * @param velocity the model output (flow prediction) for step i, same shape as {@code sample}
     * @param sample   x_i (any floating dtype)
     */
    @Override
    public Tensor step(Tensor velocity, int i, Tensor sample) {
        checkStep(i);
        Sampler.requireSameShape(velocity, sample);
        DType vd = Tensors.dtype(velocity), sd = Tensors.dtype(sample);
        if (!vd.isFloatingPoint() || !sd.isFloatingPoint()) {
            throw new IllegalArgumentException("velocity and sample must be floating tensors, got " + vd.torchName() + " and " + sd.torchName());
        }
        try (PointerScope scope = new PointerScope()) {
            Tensor x = sample.to(ScalarType.Float);
            Tensor dt = scalar_tensor(new Scalar((double) dt(i)), new TensorOptions(ScalarType.Float));
            Tensor prev = x.add(dt.mul(velocity));
            return Tensors.keep(prev.to(vd.scalarType()));
        }
    }

    private void checkStep(int i) {
        if (i < 0 || i >= timesteps.length) throw new IndexOutOfBoundsException("step " + i + " outside [0, " + (timesteps.length - 1) + "]");
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Schedule s && Arrays.equals(sigmas, s.sigmas) && Arrays.equals(timesteps, s.timesteps);
    }

    @Override
    public int hashCode() {
        return 31 * Arrays.hashCode(sigmas) + Arrays.hashCode(timesteps);
    }

    @Override
    public String toString() {
        StringBuilder b = new StringBuilder("Schedule[").append(steps()).append(" steps, sigmas ");
        for (int i = 0; i < sigmas.length; i++) b.append(i == 0 ? "" : ", ").append(String.format(Locale.ROOT, "%.7g", sigmas[i]));
        return b.append(']').toString();
    }
}
