package io.mmdit4j.golden;

import com.fasterxml.jackson.databind.JsonNode;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.flux.FluxFamily;
import io.mmdit4j.hunyuan.HunyuanVideoFamily;
import io.mmdit4j.sampling.FlowMatchEulerScheduler;
import io.mmdit4j.sd3.Sd3Family;
import io.mmdit4j.sampling.FlowMatchSchedulerConfig;
import io.mmdit4j.sampling.Schedule;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import static org.bytedeco.pytorch.global.torch.stack;

/**
 * {@code flow_match_euler} cases: the case's {@code scheduler_config} called the way its pipeline calls it
 * ({@code FluxPipeline}: explicit linspace sigmas and {@code mu = calculate_shift(params.image_seq_len)};
 * {@code StableDiffusion3Pipeline}: no sigmas), then the Euler trajectory over the case's fake velocities.
 * Outputs: {@code timesteps} [N], {@code sigmas} [N+1], {@code trajectory} [N+1, ...] ({@code x_0} = the input sample).
 * A {@code params.mu} that differs from the computed one is reported as a failure of its own.
 */
public final class SchedulerCases {
    private SchedulerCases() {}

    public static final CaseRunner FLOW_MATCH_EULER = SchedulerCases::run;

    /** Which pipeline's sigma spacing a case describes (each family configures its own). */
    static FlowMatchEulerScheduler.Spacing spacingOf(GoldenCase c) {
        String description = c.spec().path("description").asText("");
        String explicit = c.params().path("pipeline").asText("").toLowerCase(Locale.ROOT);
        if (explicit.contains("sd3") || explicit.contains("stablediffusion3")) return Sd3Family.SIGMA_SPACING;
        if (explicit.contains("hunyuan")) return HunyuanVideoFamily.SIGMA_SPACING;
        if (explicit.contains("flux")) return FluxFamily.SIGMA_SPACING;
        if (description.startsWith("StableDiffusion3Pipeline")) return Sd3Family.SIGMA_SPACING;
        if (description.startsWith("HunyuanVideoPipeline")) return HunyuanVideoFamily.SIGMA_SPACING;
        if (description.startsWith("FluxPipeline")) return FluxFamily.SIGMA_SPACING;
        // No description: FLUX cases name their image sequence length, SD3 cases do not.
        return c.params().path("image_seq_len").isNull() || c.params().path("image_seq_len").isMissingNode()
                ? Sd3Family.SIGMA_SPACING : FluxFamily.SIGMA_SPACING;
    }

    private static List<CaseResult> run(GoldenCase c) {
        String name = c.name();
        Map<String, Tensor> actual = new HashMap<>();
        List<CaseResult> results = new ArrayList<>();
        List<Tensor> steps = new ArrayList<>();
        try (SafetensorsFile in = c.inputs(); SafetensorsFile out = c.outputs(); PointerScope scope = new PointerScope()) {
            FlowMatchSchedulerConfig config = FlowMatchSchedulerConfig.fromJson(c.spec().get("scheduler_config"),
                    c.dir().resolve("case.json") + " scheduler_config");
            FlowMatchEulerScheduler scheduler = new FlowMatchEulerScheduler(config, spacingOf(c));
            JsonNode params = c.params();
            if (!params.path("num_inference_steps").canConvertToInt()) {
                return List.of(CaseResult.error(name, "-", "params.num_inference_steps is missing"));
            }
            int n = params.get("num_inference_steps").asInt();
            Integer seqLen = params.path("image_seq_len").isIntegralNumber() ? params.get("image_seq_len").asInt() : null;
            if (config.useDynamicShifting() && seqLen != null && params.path("mu").isNumber()) {
                double mu = config.mu(seqLen), expected = params.get("mu").asDouble();
                if (Math.abs(mu - expected) > 1e-12 * Math.max(1, Math.abs(expected))) {
                    results.add(CaseResult.error(name, "mu", "calculate_shift(" + seqLen + ") = " + mu + ", case says " + expected));
                }
            }
            Schedule schedule = scheduler.schedule(n, seqLen);
            actual.put("timesteps", Tensors.keep(schedule.timestepsTensor()));
            actual.put("sigmas", Tensors.keep(schedule.sigmasTensor()));
            if (in.info("sample") != null && in.info("model_outputs") != null) {
                Tensor velocities = in.load("model_outputs");
                if (velocities.size(0) != n) {
                    results.add(CaseResult.error(name, "trajectory", "model_outputs has " + velocities.size(0) + " rows for " + n + " steps"));
                } else {
                    Tensor[] xs = new Tensor[n + 1];
                    xs[0] = in.load("sample");
                    for (int i = 0; i < n; i++) {
                        xs[i + 1] = schedule.step(velocities.select(0, i), i, xs[i]);
                        steps.add(xs[i + 1]);
                    }
                    actual.put("trajectory", Tensors.keep(stack(new TensorVector(xs), 0)));
                }
            }
            results.addAll(Outputs.compare(c, name, actual, out));
            return results;
        } catch (RuntimeException e) {
            results.add(CaseResult.failed(name, "-", e));
            return results;
        } finally {
            Tensors.closeAll(actual.values());
            Tensors.closeAll(steps);
        }
    }
}
