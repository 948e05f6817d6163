package io.mmdit4j.sampling;

import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;

import static org.bytedeco.pytorch.global.torch.scalar_tensor;

/**
 * The Euler step of EDM/Karras-style samplers on a denoised prediction x0 (the modulation-guidance paper's COSMOS sampler,
 * {@code FlowMatchingSolver}): {@code d = (x − x0)/σ_i}, {@code x_{i+1} = x + (σ_{i+1} − σ_i)·d}. σ's are the schedule's
 * float32 values as 0-dim float32 tensors, so the arithmetic is the reference's float32 ops; the latents stay float32 whatever
 * the prediction's dtype. With a terminal σ of 0 the last step returns x0 up to rounding.
 */
public final class DenoisedEulerSampler implements Sampler {
    private final Schedule schedule;

    public DenoisedEulerSampler(Schedule schedule) {
        if (schedule == null) throw new IllegalArgumentException("a schedule is required");
        for (int i = 0; i < schedule.steps(); i++) {
            if (!(schedule.sigma(i) > 0)) throw new IllegalArgumentException("sigma " + i + " is " + schedule.sigma(i) + ": the x0 Euler step divides by it");
        }
        this.schedule = schedule;
    }

    @Override
    public Schedule schedule() {
        return schedule;
    }

    /** @param denoised the x0 prediction at step i */
    @Override
    public Tensor step(Tensor denoised, int i, Tensor sample) {
        Sampler.requireSameShape(denoised, sample);
        try (PointerScope scope = new PointerScope()) {
            TensorOptions f32 = new TensorOptions(ScalarType.Float);
            Tensor sigma = scalar_tensor(new Scalar((double) schedule.sigma(i)), f32);
            Tensor next = scalar_tensor(new Scalar((double) schedule.sigma(i + 1)), f32);
            if (!sample.is_cpu()) {
                sigma = sigma.to(sample.device(), ScalarType.Float);
                next = next.to(sample.device(), ScalarType.Float);
            }
            Tensor x = sample.to(ScalarType.Float);
            Tensor d = x.sub(denoised).div(sigma);             // (latent - x0_pred) / sigma
            return Tensors.keep(x.add(next.sub(sigma).mul(d)));  // latent + (sigma_next - sigma) * d
        }
    }
}
