package io.mmdit4j.sampling;

/**
 * Karras et al.'s sigmas as diffusers' {@code FlowMatchEulerDiscreteScheduler} makes them with {@code use_karras_sigmas}
 * ({@code _convert_to_karras}, ρ 7): {@code σ_i = (σ_max^(1/ρ) + i/(N−1)·(σ_min^(1/ρ) − σ_max^(1/ρ)))^ρ}, i = 0..N−1, in float64
 * then float32, followed by a terminal 0; timesteps {@code σ·num_train_timesteps} in float32. Cosmos-Predict2's scheduler config
 * (σ 80 → 0.002) with the modulation-guidance reference's {@code set_timesteps(sigmas=linspace(0, 1, N))}, whose values the
 * conversion ignores.
 */
public final class KarrasSchedule {
    private KarrasSchedule() {}

    public static Schedule of(int steps, double sigmaMin, double sigmaMax, double rho, int numTrainTimesteps) {
        if (steps < 1) throw new IllegalArgumentException("a schedule needs at least one step, got " + steps);
        if (!(sigmaMin > 0) || !(sigmaMax > sigmaMin) || !(rho > 0)) {
            throw new IllegalArgumentException("Karras sigmas need 0 < sigma_min < sigma_max and rho > 0, got " + sigmaMin + ", " + sigmaMax + ", " + rho);
        }
        float[] sigmas = new float[steps + 1];
        float[] timesteps = new float[steps];
        double minInv = Math.pow(sigmaMin, 1 / rho), maxInv = Math.pow(sigmaMax, 1 / rho);
        for (int i = 0; i < steps; i++) {
            double ramp = steps == 1 ? 0 : (double) i / (steps - 1); // np.linspace(0, 1, N)
            double s = Math.pow(maxInv + ramp * (minInv - maxInv), rho);
            sigmas[i] = (float) s;
            timesteps[i] = sigmas[i] * (float) numTrainTimesteps; // float32 sigmas × T, as set_timesteps does
        }
        sigmas[steps] = 0f;
        return new Schedule(sigmas, timesteps);
    }
}
