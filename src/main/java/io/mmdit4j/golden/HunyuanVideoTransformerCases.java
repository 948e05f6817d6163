package io.mmdit4j.golden;

import com.fasterxml.jackson.databind.JsonNode;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.hunyuan.HunyuanVideoTransformer;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** {@code hunyuan_video_transformer} cases: the forward (plain or with modulation guidance) from the diffusers folder. */
public final class HunyuanVideoTransformerCases implements CaseRunner {

    @Override
    public List<CaseResult> run(GoldenCase c) {
        JsonNode model = c.spec().path("model");
        if (!model.hasNonNull("diffusers_folder")) return List.of(CaseResult.error(c.name(), "-", "case names no model (diffusers_folder)"));
        Path modelPath = c.resolve(model.get("diffusers_folder").asText());
        if (!Files.exists(modelPath)) return List.of(CaseResult.error(c.name(), "-", "model not found: " + modelPath));
        DType compute = DType.parse(c.spec().path("compute_dtype").asText("float32"));
        try (HunyuanVideoTransformer m = HunyuanVideoTransformer.load(modelPath, compute);
             SafetensorsFile in = c.inputs(); SafetensorsFile out = c.outputs();
             PointerScope scope = new PointerScope()) {
            JsonNode mg = c.params().path("modulation_guidance");
            int guidedLayer = -1;
            ModulationGuidance guidance = ModulationGuidance.none();
            if (mg.isObject()) {
                int start = mg.path("start_layer").asInt(0);
                JsonNode end = mg.get("end_layer");
                LayerSchedule layers = end == null || end.isNull() ? LayerSchedule.from(start) : LayerSchedule.interval(start, end.asInt());
                guidance = ModulationGuidance.builder()
                        .term(m.guidanceDelta(in.load("pooled_pos"), in.load("pooled_neg")), mg.path("w").asDouble(), layers)
                        .build();
                guidedLayer = start;
            }
            Map<String, Tensor> actual = new HashMap<>();
            int layer = guidedLayer;
            try (ModulationGuidance g = guidance) {
                Tensor sample = m.forward(in.load("hidden_states"), in.load("timestep"), in.load("encoder_hidden_states"),
                        in.load("encoder_attention_mask"), in.load("pooled_projections"),
                        m.config().guidanceEmbeds() ? in.load("guidance") : null, g, 0, null, (step, cond) -> {
                            actual.put("temb", Tensors.keep(cond.temb().clone()));
                            if (layer >= 0) actual.put("temb_guided", Tensors.keep(cond.vector(layer).clone()));
                        });
                actual.put("sample", sample);
            }
            List<CaseResult> results = Outputs.compare(c, c.name(), actual, out);
            Tensors.closeAll(actual.values());
            return results;
        } catch (RuntimeException e) {
            return List.of(CaseResult.failed(c.name(), "-", e));
        }
    }
}
