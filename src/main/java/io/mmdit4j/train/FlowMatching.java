package io.mmdit4j.train;

import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.util.Locale;

import static org.bytedeco.pytorch.global.torch.createCPUGenerator;
import static org.bytedeco.pytorch.global.torch.ones_like;
import static org.bytedeco.pytorch.global.torch.rand;
import static org.bytedeco.pytorch.global.torch.randn;
import static org.bytedeco.pytorch.global.torch.sigmoid;

/**
 * The rectified-flow training objective as diffusers' SD3/FLUX trainers compute it
 * ({@code train_dreambooth_flux.py}, {@code compute_density_for_timestep_sampling},
 * {@code compute_loss_weighting_for_sd3}): {@code x_σ = (1−σ)·x0 + σ·n}, target {@code n − x0}, loss
 * {@code mean_b(mean_chw(w(σ)·(pred − target)²))}. Timesteps come from the scheduler's 1000-entry training table
 * ({@code σ_i = (1000 − i)/1000}, no shift) at {@code i = ⌊u·1000⌋}, {@code u} drawn by the scheme. Tensors returned
 * belong to the caller's scope.
 */
public final class FlowMatching {
    private FlowMatching() {}

    /** {@code --weighting_scheme}: the loss weighting and the timestep density (logit_normal and mode change only the density). */
    public enum Scheme {
        NONE, SIGMA_SQRT, LOGIT_NORMAL, MODE, COSMAP;

        public static Scheme parse(String s) {
            for (Scheme x : values()) if (x.name().equalsIgnoreCase(s.replace('-', '_'))) return x;
            throw new IllegalArgumentException("weighting scheme '" + s + "': expected none, sigma_sqrt, logit_normal, mode or cosmap");
        }

        public String id() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /** Density parameters: logit-normal mean and std, the mode scale (the scripts' defaults 0, 1, 1.29). */
    public record Density(Scheme scheme, double logitMean, double logitStd, double modeScale) {
        public static Density of(Scheme s) {
            return new Density(s, 0.0, 1.0, 1.29);
        }
    }

    public static final int TRAIN_TIMESTEPS = 1000;

    /**
     * {@code u} for {@code batch} samples: logit_normal {@code sigmoid(N(m, s))}, mode {@code 1 − u − s·(cos²(πu/2) − 1 + u)}
     * with uniform u, else uniform; then table indices {@code ⌊u·1000⌋} (int64 [B]).
     */
    public static Tensor sampleIndices(Density d, int batch, Generator g) {
        GeneratorOptional gen = new GeneratorOptional(g);
        TensorOptions f32 = new TensorOptions(ScalarType.Float);
        Tensor u;
        switch (d.scheme()) {
            case LOGIT_NORMAL -> u = sigmoid(randn(new long[] {batch}, gen, f32).mul(new Scalar(d.logitStd())).add(new Scalar(d.logitMean())));
            case MODE -> {
                Tensor v = rand(new long[] {batch}, gen, f32);
                Tensor c = v.mul(new Scalar(Math.PI / 2)).cos().pow(new Scalar(2.0));
                u = v.neg().add(new Scalar(1.0)).sub(c.sub(new Scalar(1.0)).add(v).mul(new Scalar(d.modeScale())));
            }
            default -> u = rand(new long[] {batch}, gen, f32);
        }
        return u.mul(new Scalar((double) TRAIN_TIMESTEPS)).to(ScalarType.Long).clamp_(new org.bytedeco.pytorch.ScalarOptional(new Scalar(0L)),
                new org.bytedeco.pytorch.ScalarOptional(new Scalar((long) TRAIN_TIMESTEPS - 1)));
    }

    /** The table's σ at {@code indices}: {@code (1000 − i)/1000} in float32, exactly the scheduler's {@code timesteps/1000}. */
    public static Tensor sigmas(Tensor indices) {
        return indices.neg().add(new Scalar((long) TRAIN_TIMESTEPS)).to(ScalarType.Float).div(new Scalar((double) TRAIN_TIMESTEPS));
    }

    /** {@code compute_loss_weighting_for_sd3}: σ⁻² (sigma_sqrt), {@code 2/(π(1 − 2σ + 2σ²))} (cosmap), else ones; [B]. */
    public static Tensor weighting(Scheme scheme, Tensor sigmas) {
        return switch (scheme) {
            case SIGMA_SQRT -> sigmas.pow(new Scalar(-2.0)).to(ScalarType.Float);
            case COSMAP -> {
                Tensor bot = sigmas.mul(new Scalar(2.0)).neg().add(new Scalar(1.0)).add(sigmas.pow(new Scalar(2.0)).mul(new Scalar(2.0)));
                yield bot.mul(new Scalar(Math.PI)).reciprocal().mul(new Scalar(2.0));
            }
            default -> ones_like(sigmas);
        };
    }

    /** {@code (1 − σ)·x0 + σ·n} with σ [B] broadcast over [B, C, H, W]. */
    public static Tensor noisy(Tensor x0, Tensor noise, Tensor sigmas) {
        Tensor s = sigmas.view(-1, 1, 1, 1);
        return s.neg().add(new Scalar(1.0)).mul(x0).add(s.mul(noise));
    }

    /** {@code mean_b(mean_{c,h,w}(w·(pred − target)²))} in float32, with {@code w} [B]. */
    public static Tensor loss(Tensor pred, Tensor target, Tensor weighting) {
        long b = target.size(0);
        Tensor w = weighting.to(ScalarType.Float).view(-1, 1, 1, 1);
        Tensor per = w.mul(pred.to(ScalarType.Float).sub(target.to(ScalarType.Float)).pow(new Scalar(2.0))).reshape(b, -1).mean(new long[] {1}, false,
                new org.bytedeco.pytorch.ScalarTypeOptional());
        return per.mean();
    }

    /** A seeded CPU generator (PyTorch's stream for the seed). */
    public static Generator generator(long seed) {
        return createCPUGenerator(seed);
    }
}
