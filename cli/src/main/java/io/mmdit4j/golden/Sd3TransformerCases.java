package io.mmdit4j.golden;

import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.sd3.Sd3Transformer;
import org.bytedeco.javacpp.PointerScope;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code sd3_transformer} cases: the SD3 / SD3.5 forward (plain or with modulation guidance) from the diffusers folder
 * and, when the case names one, from an original single file (reported as {@code <case>[original]}).
 */
public final class Sd3TransformerCases implements CaseRunner {

    @Override
    public List<CaseResult> run(GoldenCase c) {
        DType compute = DType.parse(c.spec().path("compute_dtype").asText("float32"));
        return CaseRunner.fromEachCheckpoint(c, "original_checkpoint", "original", (name, path) -> runFrom(c, name, path, compute));
    }

    /** Runs one case against {@code modelPath}; public so that tests can run the cases on converted copies of the model. */
    public static List<CaseResult> runFrom(GoldenCase c, String name, Path modelPath, DType compute) {
        if (!Files.exists(modelPath)) return List.of(CaseResult.error(name, "-", "model not found: " + modelPath));
        try (Sd3Transformer model = Sd3Transformer.load(modelPath, compute)) {
            return runWith(c, name, model);
        } catch (RuntimeException e) {
            return List.of(CaseResult.failed(name, "-", e));
        }
    }

    /** Runs one case on a loaded model. */
    public static List<CaseResult> runWith(GoldenCase c, String name, Sd3Transformer model) {
        List<CaseResult> results = new ArrayList<>();
        try (SafetensorsFile in = c.inputs(); SafetensorsFile out = c.outputs(); PointerScope scope = new PointerScope()) {
            try (CaseGuidance cg = CaseGuidance.read(c, in, model::guidanceDelta)) {
                cg.actual.put("sample", model.forward(in.load("hidden_states"), in.load("encoder_hidden_states"),
                        in.load("pooled_projections"), in.load("timestep"), cg.plan, 0, cg));
                results.addAll(Outputs.compare(c, name, cg.actual, out));
            }
        } catch (RuntimeException e) {
            results.add(CaseResult.failed(name, "-", e));
        }
        return results;
    }
}
