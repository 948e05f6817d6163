package io.mmdit4j.golden;

import io.mmdit4j.hunyuan.HunyuanVideoTransformer;
import io.mmdit4j.io.SafetensorsFile;
import org.bytedeco.javacpp.PointerScope;

import java.nio.file.Path;
import java.util.List;

/** {@code hunyuan_video_transformer} cases: the forward (plain or with modulation guidance) from the diffusers folder. */
public final class HunyuanVideoTransformerCases implements CaseRunner {

    @Override
    public List<CaseResult> run(GoldenCase c) {
        return CaseRunner.withModel(c, "diffusers_folder", modelPath -> runFrom(c, modelPath));
    }

    private static List<CaseResult> runFrom(GoldenCase c, Path modelPath) {
        try (HunyuanVideoTransformer m = HunyuanVideoTransformer.load(modelPath, c.computeDtype());
             SafetensorsFile in = c.inputs(); SafetensorsFile out = c.outputs();
             PointerScope scope = new PointerScope()) {
            try (CaseGuidance cg = CaseGuidance.read(c, in, m::guidanceDelta)) {
                cg.actual.put("sample", m.forward(in.load("hidden_states"), in.load("timestep"), in.load("encoder_hidden_states"),
                        in.load("encoder_attention_mask"), in.load("pooled_projections"),
                        m.config().guidanceEmbeds() ? in.load("guidance") : null, cg.plan, 0, null, cg));
                return Outputs.compare(c, c.name(), cg.actual, out);
            }
        } catch (RuntimeException e) {
            return List.of(CaseResult.failed(c.name(), "-", e));
        }
    }
}
