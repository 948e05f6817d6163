package io.mmdit4j.sampling;

import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.util.Arrays;
import java.util.Objects;
import java.util.function.IntFunction;

/**
 * diffusers' {@code FlowMatchLCMScheduler} (HiDream-I1 Fast: shift 3, Dev: shift 6) without its scale-wise option:
 * the schedule of {@code set_timesteps(N)} without sigmas (the default spacing of {@link FlowMatchEulerScheduler},
 * {@code mu} ignored unless dynamic shifting is on), and a stochastic step that draws fresh noise at <em>every</em> step,
 * also the last (where it is multiplied by {@code σ_N = 0}):
 * <pre>
 * x0   = x.float() − σ_i·v
 * x'   = (1 − σ_{i+1})·x0 + σ_{i+1}·noise_i        (cast to v's dtype)
 * </pre>
 * The noise comes from a {@link IntFunction} of the step: the pipeline's seeded per-image stream ({@link Noise.Stream})
 * or given tensors.
 */
public final class FlowMatchLcmScheduler {
    private final FlowMatchSchedulerConfig config;

    public FlowMatchLcmScheduler(FlowMatchSchedulerConfig config) {
        this.config = Objects.requireNonNull(config, "config");
    }

    public FlowMatchSchedulerConfig config() {
        return config;
    }

    /** {@code set_timesteps(steps)}: float32 sigmas (terminal 0 appended) and timesteps {@code σ·1000}. */
    public Schedule schedule(int steps, Integer imageSeqLen) {
        return new FlowMatchEulerScheduler(config, FlowMatchEulerScheduler.Spacing.SCHEDULER_DEFAULT).schedule(steps, imageSeqLen);
    }

    /**
     * The stochastic step on {@code schedule}.
     *
     * @param noise the noise of step {@code i} ({@code [B, ...]} like the latents, float32; owned by the sampler, which
     *              closes it after use); called exactly once per step, in order
     */
    public static Sampler sampler(Schedule schedule, IntFunction<Tensor> noise) {
        return sampler(schedule, noise, null);
    }

    /**
     * {@link #sampler(Schedule, IntFunction)} whose {@link Sampler#close} also closes {@code source}, the seeded streams
     * {@code noise} draws from (null: nothing to close).
     */
    public static Sampler sampler(Schedule schedule, IntFunction<Tensor> noise, Noise.Stream source) {
        Objects.requireNonNull(schedule, "schedule");
        Objects.requireNonNull(noise, "noise");
        return new Sampler() {
            private int next;

            @Override
            public Schedule schedule() {
                return schedule;
            }

            @Override
            public void close() {
                if (source != null) source.close();
            }

            @Override
            public Tensor step(Tensor velocity, int i, Tensor sample) {
                if (i != next) throw new IllegalStateException("FlowMatchLCM steps must run in order: step " + i + " after " + (next - 1));
                Sampler.requireSameShape(velocity, sample);
                long[] ss = Tensors.shape(sample);
                float sigma = schedule.sigma(i), sigmaNext = schedule.sigma(i + 1);
                DType out = Tensors.dtype(velocity);
                try (PointerScope scope = new PointerScope()) {
                    Tensor x0 = sample.to(ScalarType.Float).sub(velocity.mul(new Scalar((double) sigma)));      // float32
                    Tensor n = noise.apply(i);
                    next++;
                    if (!Arrays.equals(Tensors.shape(n), ss)) {
                        throw new IllegalArgumentException("step " + i + ": noise " + Tensors.shapeString(Tensors.shape(n)) + " for latents " + Tensors.shapeString(ss));
                    }
                    scope.attach(n);
                    n.releaseReference();
                    Tensor onDevice = x0.is_cpu() ? n.to(ScalarType.Float) : n.to(x0.device(), ScalarType.Float);
                    Tensor prev = x0.mul(new Scalar((double) (1f - sigmaNext))).add(onDevice.mul(new Scalar((double) sigmaNext)));
                    return Tensors.keep(prev.to(out.scalarType()));
                }
            }
        };
    }
}
