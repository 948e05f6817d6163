package io.mmdit4j.sampling;

import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.util.Objects;
import java.util.function.Function;

import static org.bytedeco.pytorch.global.torch.rsub;
import static org.bytedeco.pytorch.global.torch.scalar_tensor;
import static org.bytedeco.pytorch.global.torch.upsample_bicubic2d;

/**
 * Scale-wise sampling (SwD; the SwD authors' {@code inference.run}, the sampler of the SD3.5-Large-DMD2 recipe) on a
 * flow velocity: no scheduler step, but
 * <pre>
 * x0 = x − σ_i·v                                    (σ_i a 0-dim float32 tensor: libtorch's type promotion as the reference's)
 * x0 = bicubic(x0, scales[i+1] × scales[i+1])       (i < N−1; align_corners false, no antialias; the same size is a copy)
 * n  = fresh standard-normal noise of x0's shape    (drawn at every step, the last included)
 * x  = (1 − σ_{i+1})·x0 + σ_{i+1}·n                 (the last step: σ_N = 0, so x0 exactly)
 * </pre>
 * {@code halfNoise} rounds {@code n} to float16 first, as the reference code's {@code .half()} does (its fp16 recipe); then
 * {@code σ_{i+1}·n} is computed in float16. Without scales every step stays at the latents' size (the paper's
 * {@code scales=[128]*6}). The latents are {@code [B, C, h, w]}.
 */
public final class ScaleWiseSampler implements Sampler {
    private final Schedule schedule;
    private final int[] scales;
    private final boolean halfNoise;
    private final Function<long[], Tensor> noise;
    private final AutoCloseable onClose;
    private int next;

    /**
     * @param scales  the latent side of each step (null: every step at the latents' size)
     * @param noise   the next float32 draw of a shape, owned by the caller (each image's seeded stream, after its initial latents)
     * @param onClose released with the sampler (the noise stream), or null
     */
    public ScaleWiseSampler(Schedule schedule, int[] scales, boolean halfNoise, Function<long[], Tensor> noise, AutoCloseable onClose) {
        this.schedule = Objects.requireNonNull(schedule, "schedule");
        if (scales != null && scales.length != schedule.steps()) {
            throw new IllegalArgumentException(scales.length + " scales for " + schedule.steps() + " steps");
        }
        this.scales = scales == null ? null : scales.clone();
        this.halfNoise = halfNoise;
        this.noise = Objects.requireNonNull(noise, "noise");
        this.onClose = onClose;
    }

    @Override
    public Schedule schedule() {
        return schedule;
    }

    @Override
    public Tensor step(Tensor velocity, int i, Tensor sample) {
        if (i != next) throw new IllegalStateException("scale-wise steps run in order: step " + i + " after " + (next - 1));
        Sampler.requireSameShape(velocity, sample);
        try (PointerScope scope = new PointerScope()) {
            Tensor sigma = scalar(schedule.sigma(i), sample);
            Tensor x0 = sample.sub(sigma.mul(velocity));
            if (scales != null && i < schedule.steps() - 1) {
                long side = scales[i + 1];
                if (x0.size(2) != side || x0.size(3) != side) {
                    x0 = upsample_bicubic2d(x0, new long[] {side, side}, false, new DoubleOptional(), new DoubleOptional());
                }
            }
            Tensor n = noise.apply(Tensors.shape(x0));
            next++;
            scope.attach(n);
            n.releaseReference();
            Tensor drawn = halfNoise ? n.to(ScalarType.Half) : n;
            if (!x0.is_cpu()) drawn = drawn.to(x0.device(), drawn.scalar_type());
            Tensor sigmaNext = scalar(schedule.sigma(i + 1), sample);
            return Tensors.keep(rsub(sigmaNext, new Scalar(1.0)).mul(x0).add(sigmaNext.mul(drawn)));
        }
    }

    /** A 0-dim float32 tensor on the sample's device, as the reference's {@code sigmas[i]}. */
    private static Tensor scalar(float v, Tensor like) {
        Tensor t = scalar_tensor(new Scalar((double) v), new TensorOptions(ScalarType.Float));
        return like.is_cpu() ? t : t.to(like.device(), ScalarType.Float);
    }

    @Override
    public void close() {
        if (onClose == null) return;
        try {
            onClose.close();
        } catch (Exception e) {
            throw new IllegalStateException(e.getMessage(), e);
        }
    }
}
