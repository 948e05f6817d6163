package io.mmdit4j.golden;

import com.fasterxml.jackson.databind.JsonNode;
import io.mmdit4j.flux.FluxInputs;
import io.mmdit4j.flux.FluxLatents;
import io.mmdit4j.flux.FluxTransformer;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code flux_transformer} cases: the forward (plain or with modulation guidance) from the diffusers folder
 * and, when the case names one, from the original BFL single file (reported as {@code <case>[bfl]}).
 */
public final class FluxTransformerCases implements CaseRunner {

    @Override
    public List<CaseResult> run(GoldenCase c) {
        List<CaseResult> results = new ArrayList<>();
        JsonNode model = c.spec().path("model");
        DType compute = DType.parse(c.spec().path("compute_dtype").asText("float32"));
        if (model.hasNonNull("diffusers_folder")) {
            results.addAll(runFrom(c, c.name(), c.resolve(model.get("diffusers_folder").asText()), null, compute));
        }
        if (model.hasNonNull("bfl_checkpoint")) {
            int[] axes = null;
            JsonNode a = model.path("bfl_params").path("axes_dim");
            if (a.isArray()) {
                axes = new int[a.size()];
                for (int i = 0; i < axes.length; i++) axes[i] = a.get(i).asInt();
            }
            results.addAll(runFrom(c, c.name() + "[bfl]", c.resolve(model.get("bfl_checkpoint").asText()), axes, compute));
        }
        if (results.isEmpty()) results.add(CaseResult.error(c.name(), "-", "case names no model (diffusers_folder / bfl_checkpoint)"));
        return results;
    }

    private List<CaseResult> runFrom(GoldenCase c, String name, Path modelPath, int[] axes, DType compute) {
        List<CaseResult> results = new ArrayList<>();
        if (!Files.exists(modelPath)) return List.of(CaseResult.error(name, "-", "model not found: " + modelPath));
        try (FluxTransformer model = FluxTransformer.load(modelPath, compute, axes);
             SafetensorsFile in = c.inputs(); SafetensorsFile out = c.outputs();
             PointerScope scope = new PointerScope()) {
            FluxInputs inputs = new FluxInputs(in.load("hidden_states"), in.load("encoder_hidden_states"),
                    in.load("pooled_projections"), in.load("timestep"),
                    model.config().guidanceEmbeds() ? in.load("guidance") : null, in.load("img_ids"), in.load("txt_ids"));
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
                Tensor sample = model.forward(inputs, g, 0, null, (step, cond) -> {
                    actual.put("temb", Tensors.keep(cond.temb().clone()));
                    if (layer >= 0) actual.put("temb_guided", Tensors.keep(cond.vector(layer).clone()));
                });
                actual.put("sample", sample);
            }
            JsonNode grid = c.params().path("latent_grid_hw");
            if (grid.isArray() && grid.size() == 2) {
                actual.put("sample_unpacked", Tensors.keep(FluxLatents.unpack(actual.get("sample"), grid.get(0).asLong(), grid.get(1).asLong())));
            }
            results.addAll(Outputs.compare(c, name, actual, out));
            Tensors.closeAll(actual.values());
        } catch (RuntimeException e) {
            results.add(CaseResult.failed(name, "-", e));
        }
        return results;
    }
}
