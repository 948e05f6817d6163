package io.mmdit4j.sampling;

import com.fasterxml.jackson.databind.JsonNode;
import io.mmdit4j.io.JsonConfigs;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * diffusers' {@code UniPCMultistepScheduler} with flow sigmas and {@code prediction_type="flow_prediction"}
 * (HiDream-I1 Full: {@code flow_shift 3}, {@code solver_order 2}, {@code bh2}, {@code lower_order_final}): the schedule
 * {@code σ = shift(1 − linspace(1, 1/T, N+1))} reversed without its last value, the terminal σ 0 (or σ_min) appended and
 * {@code timesteps = int64(σ·T)} (truncated: 999, 899, ...), and the predictor–corrector update on x0 predictions
 * {@code x − σ·v} (UniC corrects each new sample with the model output at it, UniP predicts the next), as diffusers
 * computes it: the step coefficients in float32, the 2×2 system of order 2 solved by LU with partial pivoting.
 * Deterministic: no noise.
 */
public final class UniPcMultistepScheduler {
    public static final String CLASS_NAME = "UniPCMultistepScheduler";

    /**
     * The supported options of its {@code scheduler_config.json}.
     *
     * @param finalSigmaMin {@code final_sigmas_type = "sigma_min"} (else {@code "zero"})
     * @param bh2           {@code solver_type = "bh2"} (else {@code "bh1"})
     */
    public record Config(int numTrainTimesteps, double flowShift, int solverOrder, boolean bh2, boolean lowerOrderFinal,
                         boolean finalSigmaMin, List<Integer> disableCorrector) {
        public Config {
            if (numTrainTimesteps < 2) throw new IllegalArgumentException("num_train_timesteps must be >= 2, got " + numTrainTimesteps);
            if (!(flowShift > 0) || !Double.isFinite(flowShift)) throw new IllegalArgumentException("flow_shift must be a finite number > 0, got " + flowShift);
            if (solverOrder < 1 || solverOrder > 3) throw new IllegalArgumentException("solver_order must be 1, 2 or 3, got " + solverOrder);
            disableCorrector = List.copyOf(disableCorrector);
        }

        /** HiDream-I1 Full's scheduler: flow sigmas, shift 3, order 2, bh2, lower-order final, final σ 0. */
        public static Config hidreamFull() {
            return new Config(1000, 3.0, 2, true, true, false, List.of());
        }

        public Config withShift(double shift) {
            return new Config(numTrainTimesteps, shift, solverOrder, bh2, lowerOrderFinal, finalSigmaMin, disableCorrector);
        }
    }

    private static final Set<String> READ = Set.of("num_train_timesteps", "flow_shift", "solver_order", "solver_type", "lower_order_final",
            "final_sigmas_type", "disable_corrector", "prediction_type", "use_flow_sigmas", "predict_x0");
    /** Options that do not change a flow-sigma schedule (the beta schedule only sizes the unused DDPM tables). */
    private static final Set<String> INERT = Set.of("beta_start", "beta_end", "beta_schedule", "trained_betas", "rescale_betas_zero_snr",
            "timestep_spacing", "steps_offset", "dynamic_thresholding_ratio", "sample_max_value", "time_shift_type");
    /** Options that change the schedule or the update and are not implemented: allowed only when null or false. */
    private static final Set<String> UNSUPPORTED = Set.of("thresholding", "use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas",
            "use_dynamic_shifting", "solver_p");

    /** Reads {@code scheduler_config.json} (the file, a {@code scheduler/} folder or a model folder with one). */
    public static Config fromFile(Path path) {
        Path file = FlowMatchSchedulerConfig.configFile(path);
        return fromJson(JsonConfigs.readObject(file, "scheduler config"), file.toString());
    }

    public static Config fromJson(JsonNode c, String origin) {
        if (c == null || !c.isObject()) throw new ModelFormatException(origin + ": scheduler config must be a JSON object");
        String cls = c.path("_class_name").asText("");
        if (!cls.isEmpty() && !cls.equals(CLASS_NAME)) throw new ModelFormatException(origin + ": _class_name is '" + cls + "', expected " + CLASS_NAME);
        JsonConfigs.rejectUnread(c, origin, READ, INERT, UNSUPPORTED, " (this UniPCMultistepScheduler implements flow sigmas with flow_prediction only)");
        String prediction = c.path("prediction_type").asText("epsilon");
        if (!prediction.equals("flow_prediction") || !c.path("use_flow_sigmas").asBoolean(false) || !c.path("predict_x0").asBoolean(true)) {
            throw new ModelFormatException(origin + ": only prediction_type \"flow_prediction\" with use_flow_sigmas true and predict_x0 true is supported, found "
                    + prediction + ", use_flow_sigmas " + c.path("use_flow_sigmas") + ", predict_x0 " + c.path("predict_x0"));
        }
        String solver = c.path("solver_type").asText("bh2").toLowerCase(Locale.ROOT);
        if (!solver.equals("bh1") && !solver.equals("bh2")) throw new ModelFormatException(origin + ": solver_type '" + solver + "' (expected bh1 or bh2)");
        String last = c.path("final_sigmas_type").asText("zero");
        if (!last.equals("zero") && !last.equals("sigma_min")) throw new ModelFormatException(origin + ": final_sigmas_type '" + last + "' (expected zero or sigma_min)");
        List<Integer> disabled = new ArrayList<>();
        for (JsonNode d : c.path("disable_corrector")) disabled.add(d.asInt());
        try {
            return new Config(JsonConfigs.intOr(c, origin, "num_train_timesteps", 1000), JsonConfigs.doubleOr(c, origin, "flow_shift", 1.0),
                    JsonConfigs.intOr(c, origin, "solver_order", 2), solver.equals("bh2"), JsonConfigs.boolOr(c, origin, "lower_order_final", true),
                    last.equals("sigma_min"), disabled);
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(origin + ": " + e.getMessage(), e);
        }
    }

    private final Config config;

    public UniPcMultistepScheduler(Config config) {
        this.config = config;
    }

    public Config config() {
        return config;
    }

    /** {@code set_timesteps(steps)} with flow sigmas: float32 sigmas (N+1, the terminal one last) and int64 timesteps (as floats). */
    public Schedule schedule(int steps) {
        if (steps < 1) throw new IllegalArgumentException("the number of inference steps must be >= 1, got " + steps);
        int t = config.numTrainTimesteps();
        double[] alphas = FlowMatchEulerScheduler.linspace(1.0, 1.0 / t, steps + 1);
        double shift = config.flowShift();
        double[] shifted = new double[steps + 1];
        for (int i = 0; i <= steps; i++) {
            double s = 1.0 - alphas[i];
            shifted[i] = shift * s / (1 + (shift - 1) * s);
        }
        float[] sigmas = new float[steps + 1];
        float[] timesteps = new float[steps];
        for (int i = 0; i < steps; i++) {
            double s = shifted[steps - i];          // flipped, the last (smallest) dropped
            sigmas[i] = (float) s;
            timesteps[i] = (long) (s * t);          // numpy float64 -> int64 truncates
        }
        sigmas[steps] = config.finalSigmaMin() ? sigmas[steps - 1] : 0f;
        return new Schedule(sigmas, timesteps);
    }

    /** The multistep sampler of one generation on {@code schedule} (its steps in order). */
    public Sampler sampler(Schedule schedule) {
        return new Multistep(schedule);
    }

    private final class Multistep implements Sampler {
        private final Schedule schedule;
        private final Tensor[] modelOutputs = new Tensor[config.solverOrder()]; // x0 predictions, newest last (owned)
        private Tensor lastSample;                                             // owned
        private int lowerOrderNums;
        private int thisOrder;
        private int stepIndex;

        Multistep(Schedule schedule) {
            this.schedule = schedule;
        }

        @Override
        public Schedule schedule() {
            return schedule;
        }

        @Override
        public Tensor step(Tensor velocity, int i, Tensor sample) {
            if (i != stepIndex) throw new IllegalStateException("UniPC steps must run in order: step " + i + " after " + (stepIndex - 1));
            Sampler.requireSameShape(velocity, sample);
            try (PointerScope scope = new PointerScope()) {
                float sigma = schedule.sigma(i);
                Tensor x0 = sample.sub(velocity.mul(new Scalar((double) sigma)));                 // convert_model_output
                boolean corrector = i > 0 && !config.disableCorrector().contains(i - 1) && lastSample != null;
                Tensor x = corrector ? correct(x0, lastSample, sample, thisOrder) : sample;
                Native.release(modelOutputs[0]);
                System.arraycopy(modelOutputs, 1, modelOutputs, 0, modelOutputs.length - 1);
                modelOutputs[modelOutputs.length - 1] = Tensors.keep(x0);
                int order = config.lowerOrderFinal() ? Math.min(config.solverOrder(), schedule.steps() - i) : config.solverOrder();
                thisOrder = Math.min(order, lowerOrderNums + 1);
                Native.release(lastSample);
                lastSample = Tensors.keep(x);
                Tensor prev = predict(x, thisOrder);
                if (lowerOrderNums < config.solverOrder()) lowerOrderNums++;
                stepIndex++;
                return Tensors.keep(prev);
            }
        }

        private float lambda(int index) {
            float s = schedule.sigma(index);
            return (float) Math.log(1f - s) - (float) Math.log(s);           // log(alpha_t) - log(sigma_t), float32
        }

        /** UniP: {@code x_{i+1}} from {@code x} with the newest {@code order} model outputs. */
        private Tensor predict(Tensor x, int order) {
            int si = stepIndex;
            float sigmaT = schedule.sigma(si + 1), sigmaS0 = schedule.sigma(si);
            float alphaT = 1f - sigmaT;
            float h = lambda(si + 1) - lambda(si);
            Tensor m0 = modelOutputs[modelOutputs.length - 1];
            List<Float> rks = new ArrayList<>();
            List<Tensor> d1s = new ArrayList<>();
            for (int k = 1; k < order; k++) {
                Tensor mk = modelOutputs[modelOutputs.length - 1 - k];
                float rk = (lambda(si - k) - lambda(si)) / h;
                rks.add(rk);
                d1s.add(mk.sub(m0).div(new Scalar((double) rk)));
            }
            Coefficients c = coefficients(h, rks, order);
            Tensor xt = x.mul(new Scalar((double) (sigmaT / sigmaS0))).sub(m0.mul(new Scalar((double) (alphaT * c.hPhi1))));
            if (d1s.isEmpty()) return xt.to(x.scalar_type());
            float[] rhos = order == 2 ? new float[] {0.5f} : solve(c.r, c.b, order - 1);
            Tensor res = weighted(rhos, d1s);
            return xt.sub(res.mul(new Scalar((double) (alphaT * c.bH)))).to(x.scalar_type());
        }

        /** UniC: the corrected {@code x_i} from the model output {@code modelT} at it ({@code x} is {@code x_{i-1}}). */
        private Tensor correct(Tensor modelT, Tensor x, Tensor xT, int order) {
            int si = stepIndex;
            float sigmaT = schedule.sigma(si), sigmaS0 = schedule.sigma(si - 1);
            float alphaT = 1f - sigmaT;
            float h = lambda(si) - lambda(si - 1);
            Tensor m0 = modelOutputs[modelOutputs.length - 1];
            List<Float> rks = new ArrayList<>();
            List<Tensor> d1s = new ArrayList<>();
            for (int k = 1; k < order; k++) {
                Tensor mk = modelOutputs[modelOutputs.length - 1 - k];
                float rk = (lambda(si - (k + 1)) - lambda(si - 1)) / h;
                rks.add(rk);
                d1s.add(mk.sub(m0).div(new Scalar((double) rk)));
            }
            Coefficients c = coefficients(h, rks, order);
            float[] rhos = order == 1 ? new float[] {0.5f} : solve(c.r, c.b, order);
            Tensor xt = x.mul(new Scalar((double) (sigmaT / sigmaS0))).sub(m0.mul(new Scalar((double) (alphaT * c.hPhi1))));
            Tensor d1t = modelT.sub(m0);
            Tensor last = d1t.mul(new Scalar((double) rhos[rhos.length - 1]));
            Tensor inner = d1s.isEmpty() ? last : weighted(Arrays.copyOf(rhos, rhos.length - 1), d1s).add(last);
            return xt.sub(inner.mul(new Scalar((double) (alphaT * c.bH)))).to(x.scalar_type());
        }

        @Override
        public void close() {
            for (Tensor t : modelOutputs) Native.release(t);
            Arrays.fill(modelOutputs, null);
            Native.release(lastSample);
            lastSample = null;
        }
    }

    /** {@code Σ_k rhos[k]·d1s[k]} (diffusers' einsum over k; a single term is a plain product). */
    private static Tensor weighted(float[] rhos, List<Tensor> d1s) {
        Tensor sum = d1s.get(0).mul(new Scalar((double) rhos[0]));
        for (int k = 1; k < d1s.size(); k++) sum = sum.add(d1s.get(k).mul(new Scalar((double) rhos[k])));
        return sum;
    }

    /** The float32 scalars of one update: {@code h·φ1}, {@code B(h)}, and the system {@code R·ρ = b} of its order. */
    private record Coefficients(float hPhi1, float bH, float[][] r, float[] b) {}

    private Coefficients coefficients(float h, List<Float> rks, int order) {
        float hh = -h;                                                   // predict_x0
        float hPhi1 = (float) Math.expm1(hh);
        float hPhiK = hPhi1 / hh - 1f;
        float bH = config.bh2() ? (float) Math.expm1(hh) : hh;
        float[] rk = new float[rks.size() + 1];
        for (int k = 0; k < rks.size(); k++) rk[k] = rks.get(k);
        rk[rks.size()] = 1f;
        float[][] r = new float[order][];
        float[] b = new float[order];
        long factorial = 1;
        for (int i = 1; i <= order; i++) {
            r[i - 1] = new float[rk.length];
            for (int k = 0; k < rk.length; k++) r[i - 1][k] = (float) Math.pow(rk[k], i - 1);
            b[i - 1] = hPhiK * factorial / bH;
            factorial *= i + 1;
            hPhiK = hPhiK / hh - 1f / factorial;
        }
        return new Coefficients(hPhi1, bH, r, b);
    }

    /** {@code torch.linalg.solve(R[:n, :n], b[:n])} in float32: LU with partial pivoting, as LAPACK's sgesv. */
    static float[] solve(float[][] r, float[] b, int n) {
        float[][] a = new float[n][];
        float[] y = Arrays.copyOf(b, n);
        for (int i = 0; i < n; i++) a[i] = Arrays.copyOf(r[i], n);
        for (int col = 0; col < n; col++) {
            int p = col;
            for (int row = col + 1; row < n; row++) if (Math.abs(a[row][col]) > Math.abs(a[p][col])) p = row;
            if (a[p][col] == 0f) throw new IllegalStateException("UniPC: singular order-" + n + " system");
            if (p != col) {
                float[] t = a[p]; a[p] = a[col]; a[col] = t;
                float u = y[p]; y[p] = y[col]; y[col] = u;
            }
            float inv = 1f / a[col][col];
            for (int row = col + 1; row < n; row++) {
                float l = a[row][col] * inv;
                for (int k = col + 1; k < n; k++) a[row][k] -= l * a[col][k];
                y[row] -= l * y[col];
            }
        }
        float[] x = new float[n];
        for (int row = n - 1; row >= 0; row--) {
            float v = y[row];
            for (int k = row + 1; k < n; k++) v -= a[row][k] * x[k];
            x[row] = v / a[row][row];
        }
        return x;
    }
}
