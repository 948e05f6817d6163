package io.mmdit4j.golden;

import io.mmdit4j.hunyuan.HunyuanVideoTransformer;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.runtime.DType;
import org.bytedeco.javacpp.PointerScope;

import java.nio.file.Path;
import java.util.List;

/** {@code hunyuan_video_transformer} cases: the forward (plain or with modulation guidance) from the diffusers folder. */
public final class HunyuanVideoTransformerCases implements CaseRunner {

    @Override
    public List<CaseResult> run(GoldenCase c) {
        return CaseRunner.withModel(c, "diffusers_folder", modelPath -> runFrom(c, c.name(), modelPath, c.computeDtype()));
    }

    /** Runs one case against {@code modelPath}; public so that tests can run the cases on converted copies of the model. */
    public static List<CaseResult> runFrom(GoldenCase c, String name, Path modelPath, DType compute) {
        if (!java.nio.file.Files.exists(modelPath)) return List.of(CaseResult.error(name, "-", "model not found: " + modelPath));
        try (HunyuanVideoTransformer m = HunyuanVideoTransformer.load(modelPath, compute);
             SafetensorsFile in = c.inputs(); SafetensorsFile out = c.outputs();
             PointerScope scope = new PointerScope()) {
            try (CaseGuidance cg = CaseGuidance.read(c, in, m::guidanceDelta)) {
                cg.actual.put("sample", m.forward(in.load("hidden_states"), in.load("timestep"), in.load("encoder_hidden_states"),
                        in.load("encoder_attention_mask"), in.load("pooled_projections"),
                        m.config().guidanceEmbeds() ? in.load("guidance") : null, cg.plan, 0, null, cg));
                return Outputs.compare(c, name, cg.actual, out);
            }
        } catch (RuntimeException e) {
            return List.of(CaseResult.failed(name, "-", e));
        }
    }
}
