package io.mmdit4j.golden;

import com.fasterxml.jackson.databind.JsonNode;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.sd3.Sd3Transformer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code sd3_transformer} cases: the SD3 / SD3.5 forward (plain or with modulation guidance) from the diffusers folder
 * and, when the case names one, from an original single file (reported as {@code <case>[original]}).
 */
public final class Sd3TransformerCases implements CaseRunner {

    @Override
    public List<CaseResult> run(GoldenCase c) {
        List<CaseResult> results = new ArrayList<>();
        JsonNode model = c.spec().path("model");
        DType compute = DType.parse(c.spec().path("compute_dtype").asText("float32"));
        if (model.hasNonNull("diffusers_folder")) {
            results.addAll(runFrom(c, c.name(), c.resolve(model.get("diffusers_folder").asText()), compute));
        }
        if (model.hasNonNull("original_checkpoint")) {
            results.addAll(runFrom(c, c.name() + "[original]", c.resolve(model.get("original_checkpoint").asText()), compute));
        }
        if (results.isEmpty()) results.add(CaseResult.error(c.name(), "-", "case names no model (diffusers_folder / original_checkpoint)"));
        return results;
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
            JsonNode mg = c.params().path("modulation_guidance");
            int guidedLayer = -1;
            ModulationGuidance guidance = ModulationGuidance.none();
            if (mg.isObject()) {
                int start = mg.path("start_layer").asInt(0);
                JsonNode end = mg.get("end_layer");
                LayerSchedule layers = end == null || end.isNull() ? LayerSchedule.from(start) : LayerSchedule.interval(start, end.asInt());
                guidance = ModulationGuidance.builder()
                        .term(model.guidanceDelta(in.load("pooled_pos"), in.load("pooled_neg")), mg.path("w").asDouble(), layers)
                        .build();
                guidedLayer = start;
            }
            Map<String, Tensor> actual = new HashMap<>();
            int layer = guidedLayer;
            try (ModulationGuidance g = guidance) {
                Tensor sample = model.forward(in.load("hidden_states"), in.load("encoder_hidden_states"), in.load("pooled_projections"),
                        in.load("timestep"), g, 0, (step, cond) -> {
                            actual.put("temb", Tensors.keep(cond.temb().clone()));
                            if (layer >= 0) actual.put("temb_guided", Tensors.keep(cond.vector(layer).clone()));
                        });
                actual.put("sample", sample);
            }
            results.addAll(Outputs.compare(c, name, actual, out));
            Tensors.closeAll(actual.values());
        } catch (RuntimeException e) {
            results.add(CaseResult.failed(name, "-", e));
        }
        return results;
    }
}
