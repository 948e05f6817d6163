package io.mmdit4j.golden;

import com.fasterxml.jackson.databind.JsonNode;
import io.mmdit4j.flux.FluxInputs;
import io.mmdit4j.flux.FluxLatents;
import io.mmdit4j.flux.FluxTransformer;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

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
            try (CaseGuidance cg = CaseGuidance.read(c, in, model::guidanceDelta)) {
                Tensor sample = model.forward(inputs, cg.plan, 0, null, cg);
                cg.actual.put("sample", sample);
                JsonNode grid = c.params().path("latent_grid_hw");
                if (grid.isArray() && grid.size() == 2) {
                    cg.actual.put("sample_unpacked", Tensors.keep(FluxLatents.unpack(sample, grid.get(0).asLong(), grid.get(1).asLong())));
                }
                results.addAll(Outputs.compare(c, name, cg.actual, out));
            }
        } catch (RuntimeException e) {
            results.add(CaseResult.failed(name, "-", e));
        }
        return results;
    }
}
