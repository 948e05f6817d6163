package io.mmdit4j.golden;

import io.mmdit4j.guidance.CfgRows;
import io.mmdit4j.guidance.Direction;
import io.mmdit4j.guidance.GuidancePlan;
import io.mmdit4j.hidream.HiDreamTransformer;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.runtime.DType;
import org.bytedeco.javacpp.PointerScope;

import java.nio.file.Path;
import java.util.List;

/**
 * {@code hidream_transformer} cases: the forward (plain or with modulation guidance) from the diffusers folder, with the
 * reference's guidance rule: the final layer always guided, and on a batch of exactly 2 rows {@code −, +}
 * ({@link CfgRows#REFERENCE_PAIR}, which each case's {@code guidance_branch} states), {@code +} on every row otherwise.
 */
public final class HiDreamTransformerCases implements CaseRunner {

    @Override
    public List<CaseResult> run(GoldenCase c) {
        return CaseRunner.withModel(c, "diffusers_folder", modelPath -> runFrom(c, c.name(), modelPath, c.computeDtype()));
    }

    /** Runs one case against {@code modelPath}; public so that tests can run the cases on converted copies of the model. */
    public static List<CaseResult> runFrom(GoldenCase c, String name, Path modelPath, DType compute) {
        try (HiDreamTransformer m = HiDreamTransformer.load(modelPath, compute);
             SafetensorsFile in = c.inputs(); SafetensorsFile out = c.outputs();
             PointerScope scope = new PointerScope()) {
            int batch = (int) in.info("hidden_states").shape()[0];
            Direction rule = Direction.of("+", "-").w(1).rows(CfgRows.REFERENCE_PAIR);
            try (CaseGuidance cg = CaseGuidance.read(c, in, m::guidanceDelta, GuidancePlan.transformerRowWeights(rule, batch, false), true)) {
                cg.actual.put("sample", m.forward(in.load("hidden_states"), in.load("timesteps"), in.load("encoder_hidden_states_t5"),
                        in.load("encoder_hidden_states_llama3"), in.load("pooled_embeds"), cg.plan, 0, cg));
                return Outputs.compare(c, name, cg.actual, out);
            }
        } catch (RuntimeException e) {
            return List.of(CaseResult.failed(name, "-", e));
        }
    }
}
