package io.mmdit4j.sampling;

import java.util.Arrays;
import java.util.Objects;

/**
 * diffusers' {@code FlowMatchEulerDiscreteScheduler.set_timesteps}, reproduced bit for bit (float32 results equal to
 * the reference's), with the sigma {@link Spacing} a pipeline passes it. Each family configures its own spacing
 * ({@code FluxFamily.SIGMA_SPACING} and so on):
 *
 * <ul>
 *   <li>{@link Spacing#LINSPACE_TO_ONE_OVER_N} ({@code FluxPipeline}): {@code sigmas = np.linspace(1.0, 1/N, N)}
 *       (float64) and {@code mu = calculate_shift(image_seq_len, ...)}. The scheduler casts the sigmas to <b>float32</b>
 *       and shifts them in float32 numpy arithmetic (dynamic: {@code e^mu / (e^mu + (1/σ − 1))} with a float64
 *       {@code e^mu} rounded to float32; static: {@code shift·σ / (1 + (shift−1)·σ)}).</li>
 *   <li>{@link Spacing#SCHEDULER_DEFAULT} ({@code StableDiffusion3Pipeline}): no sigmas. The scheduler then spaces
 *       {@code linspace(1000·σ_max, 1000·σ_min, N)} in <b>float64</b>, where {@code σ_min} is the already shifted
 *       float32 value from its constructor ({@code shift(0.001)}), and shifts again in float64 before rounding to
 *       float32: the "double shift" at the low end.</li>
 *   <li>{@link Spacing#LINSPACE_TO_ZERO_EXCLUSIVE} ({@code HunyuanVideoPipeline}): {@code sigmas = np.linspace(1, 0,
 *       N+1)[:-1]} (float32 path, static shift 7 in its config), and no {@code mu}.</li>
 * </ul>
 *
 * In every case {@code timesteps = σ'·num_train_timesteps} in float32 and the sigmas get a terminal 0.
 * {@link #fromSigmas} is the separate path for explicit recipes (DMD2 and the like): the list reaches the model as
 * given, without any shift.
 */
public final class FlowMatchEulerScheduler {

    /** The sigmas a pipeline passes to {@code set_timesteps} for N steps, and whether it passes {@code mu}. */
    public enum Spacing {
        /** {@code linspace(1, 1/N, N)} with {@code mu} (dynamic shifting allowed). */
        LINSPACE_TO_ONE_OVER_N(true),
        /** No sigmas: the scheduler's own {@code linspace(σ_max·T, σ_min·T, N)}, with {@code mu} when dynamic. */
        SCHEDULER_DEFAULT(true),
        /** {@code linspace(1, 0, N+1)[:-1]}, without {@code mu} (a dynamic-shifting config is an error). */
        LINSPACE_TO_ZERO_EXCLUSIVE(false);

        /** Whether the pipeline computes and passes {@code mu} for dynamic shifting. */
        public final boolean passesMu;

        Spacing(boolean passesMu) {
            this.passesMu = passesMu;
        }
    }

    private final FlowMatchSchedulerConfig config;
    private final Spacing spacing;
    private final float sigmaMin;
    private final float sigmaMax;

    public FlowMatchEulerScheduler(FlowMatchSchedulerConfig config, Spacing spacing) {
        this.config = Objects.requireNonNull(config, "config");
        this.spacing = Objects.requireNonNull(spacing, "spacing");
        // __init__: timesteps = linspace(1, T, T, float32)[::-1]; sigmas = timesteps / T (torch float32);
        // shifted in float32 unless dynamic shifting is on. sigma_max/sigma_min are its first and last values.
        float t = config.numTrainTimesteps();
        float first = t / t;
        float last = 1f / t;
        if (!config.useDynamicShifting()) {
            first = staticShift32(first, config.shift());
            last = staticShift32(last, config.shift());
        }
        this.sigmaMax = first;
        this.sigmaMin = last;
    }

    public FlowMatchSchedulerConfig config() { return config; }
    public Spacing spacing() { return spacing; }

    /** The scheduler's {@code sigma_min} (float32, shifted by the constructor unless dynamic shifting is on). */
    public float sigmaMin() { return sigmaMin; }

    /** The scheduler's {@code sigma_max} (1.0 for the released configs). */
    public float sigmaMax() { return sigmaMax; }

    /**
     * The schedule of this spacing for {@code steps} denoising steps.
     *
     * @param imageSeqLen number of image tokens (FLUX: packed latent tokens, {@code (h/2)(w/2)}; SD3: patches); required
     *                    when the config uses dynamic shifting, ignored otherwise (may be null)
     */
    public Schedule schedule(int steps, Integer imageSeqLen) {
        if (steps < 1) throw new IllegalArgumentException("the number of inference steps must be >= 1, got " + steps);
        Double mu = null;
        if (config.useDynamicShifting()) {
            if (!spacing.passesMu) {
                throw new IllegalArgumentException("this pipeline passes no mu, but its scheduler config uses dynamic shifting");
            }
            if (imageSeqLen == null) {
                throw new IllegalArgumentException("this scheduler config uses dynamic shifting: the image sequence length "
                        + "(number of image tokens) is required to compute mu");
            }
            if (imageSeqLen < 1) throw new IllegalArgumentException("image sequence length must be >= 1, got " + imageSeqLen);
            mu = config.mu(imageSeqLen);
        }
        switch (spacing) {
            case LINSPACE_TO_ONE_OVER_N:
                return setTimesteps(null, linspace(1.0, 1.0 / steps, steps), mu);
            case LINSPACE_TO_ZERO_EXCLUSIVE:
                return setTimesteps(null, Arrays.copyOf(linspace(1.0, 0.0, steps + 1), steps), mu);
            default:
                return setTimesteps(steps, null, mu);
        }
    }

    /**
     * diffusers' {@code set_timesteps(num_inference_steps, sigmas=..., mu=...)} exactly, including its shift of
     * explicit sigma lists (float32 arithmetic) and of the default spacing (float64 arithmetic).
     *
     * @param numInferenceSteps used when {@code sigmas} is null
     * @param sigmas            explicit (unshifted) sigmas without the terminal 0, or null for the default spacing
     * @param mu                required with dynamic shifting
     */
    public Schedule setTimesteps(Integer numInferenceSteps, double[] sigmas, Double mu) {
        if (config.useDynamicShifting() && mu == null) {
            throw new IllegalArgumentException("mu is required when use_dynamic_shifting is true");
        }
        if (mu != null && !Double.isFinite(mu)) throw new IllegalArgumentException("mu must be finite, got " + mu);
        float[] shifted;
        if (sigmas == null) {
            if (numInferenceSteps == null || numInferenceSteps < 1) {
                throw new IllegalArgumentException("the number of inference steps must be >= 1, got " + numInferenceSteps);
            }
            int n = numInferenceSteps;
            int t = config.numTrainTimesteps();
            double[] ts = linspace((double) sigmaMax * t, (double) sigmaMin * t, n);   // float64, as numpy
            shifted = new float[n];
            for (int i = 0; i < n; i++) shifted[i] = (float) shift64(ts[i] / t, mu);
        } else {
            if (sigmas.length < 1) throw new IllegalArgumentException("sigmas must not be empty");
            shifted = new float[sigmas.length];
            for (int i = 0; i < sigmas.length; i++) {
                if (Double.isNaN(sigmas[i])) throw new IllegalArgumentException("sigma " + i + " is NaN");
                shifted[i] = shift32((float) sigmas[i], mu);                         // np.array(sigmas).astype(float32)
            }
        }
        return Schedule.withTerminalZero(shifted, config.numTrainTimesteps());
    }

    /**
     * An explicit sigma list used as given (no shift): the DMD2-style recipes. A terminal 0 is appended unless the
     * list already ends with 0; {@code timesteps = σ·num_train_timesteps} (float32). The sigmas must lie in [0, 1]
     * and decrease strictly.
     */
    public Schedule fromSigmas(double[] sigmas) {
        return fromSigmas(sigmas, config.numTrainTimesteps());
    }

    /** {@link #fromSigmas(double[])} for {@code num_train_timesteps} = {@code numTrainTimesteps}. */
    public static Schedule fromSigmas(double[] sigmas, int numTrainTimesteps) {
        if (sigmas == null || sigmas.length == 0) throw new IllegalArgumentException("sigmas must not be empty");
        if (numTrainTimesteps < 1) throw new IllegalArgumentException("num_train_timesteps must be >= 1, got " + numTrainTimesteps);
        for (int i = 0; i < sigmas.length; i++) {
            double s = sigmas[i];
            if (!Double.isFinite(s)) throw new IllegalArgumentException("sigma " + i + " is " + s + ": sigmas must be finite");
            if (s < 0 || s > 1) throw new IllegalArgumentException("sigma " + i + " = " + s + " is outside [0, 1]");
            if (i > 0 && !(s < sigmas[i - 1])) {
                throw new IllegalArgumentException("sigmas must decrease strictly: sigma " + i + " = " + s + " follows " + sigmas[i - 1]);
            }
        }
        boolean terminal = sigmas[sigmas.length - 1] == 0.0;
        int n = terminal ? sigmas.length - 1 : sigmas.length;
        if (n < 1) throw new IllegalArgumentException("sigmas [0.0] describe no step: give at least one sigma > 0");
        float[] f = new float[n];
        for (int i = 0; i < n; i++) {
            f[i] = (float) sigmas[i];
            if (i > 0 && !(f[i] < f[i - 1])) {
                throw new IllegalArgumentException("sigmas " + sigmas[i - 1] + " and " + sigmas[i] + " are equal in float32");
            }
        }
        if (!(f[n - 1] > 0f)) throw new IllegalArgumentException("sigma " + sigmas[n - 1] + " rounds to 0 in float32");
        return Schedule.withTerminalZero(f, numTrainTimesteps);
    }

    /**
     * diffusers' {@code calculate_shift}: {@code mu} on the line through (baseSeqLen, baseShift) and
     * (maxSeqLen, maxShift), in float64 with the reference's order of operations.
     */
    public static double calculateShift(int imageSeqLen, int baseSeqLen, int maxSeqLen, double baseShift, double maxShift) {
        if (maxSeqLen == baseSeqLen) throw new IllegalArgumentException("max_image_seq_len must differ from base_image_seq_len");
        double m = (maxShift - baseShift) / (double) (maxSeqLen - baseSeqLen);
        double b = baseShift - m * baseSeqLen;
        return imageSeqLen * m + b;
    }

    /** {@code calculate_shift} with the defaults FLUX uses (256, 4096, 0.5, 1.15). */
    public static double calculateShift(int imageSeqLen) {
        return calculateShift(imageSeqLen, 256, 4096, 0.5, 1.15);
    }

    // ---------------------------------------------------------------- the shifts, in the reference's precision

    /** Shift of a float32 numpy array: every operation rounds to float32 (python floats become float32 operands). */
    private float shift32(float s, Double mu) {
        if (config.useDynamicShifting()) {
            float e = (float) timeShiftNumerator(mu);
            float x = 1f / s;
            x = x - 1f;                  // (1/t - 1) ** 1.0 is the identity
            return e / (e + x);
        }
        return staticShift32(s, config.shift());
    }

    /** Shift of a float64 numpy array (the default spacing). */
    private double shift64(double s, Double mu) {
        if (config.useDynamicShifting()) {
            double e = timeShiftNumerator(mu);
            return e / (e + (1.0 / s - 1.0));
        }
        double shift = config.shift();
        return shift * s / (1 + (shift - 1) * s);
    }

    private double timeShiftNumerator(double mu) {
        return config.timeShiftType() == FlowMatchSchedulerConfig.TimeShiftType.EXPONENTIAL ? StrictMath.exp(mu) : mu;
    }

    /** {@code shift·σ / (1 + (shift − 1)·σ)} in float32 ({@code shift − 1} is a float64 subtraction first). */
    static float staticShift32(float s, double shift) {
        float a = (float) shift * s;
        float b = (float) (shift - 1.0) * s;
        return a / (1f + b);
    }

    /** numpy's {@code linspace(start, stop, num)} (endpoint included) in float64, bit for bit. */
    static double[] linspace(double start, double stop, int num) {
        if (num < 0) throw new IllegalArgumentException("linspace num must be >= 0, got " + num);
        double[] y = new double[num];
        int div = num - 1;
        double delta = stop - start;
        if (div > 0) {
            double step = delta / div;
            for (int i = 0; i < num; i++) y[i] = (step == 0 ? (i / (double) div) * delta : i * step) + start;
            y[num - 1] = stop;
        } else if (num == 1) {
            y[0] = 0 * delta + start;
        }
        return y;
    }
}
