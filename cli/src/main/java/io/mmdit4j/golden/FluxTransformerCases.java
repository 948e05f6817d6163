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
    private final String singleFileKey;
    private final String suffix;

    /** {@code flux_transformer}: the diffusers folder and the BFL file ({@code model.bfl_checkpoint}, reported as {@code [bfl]}). */
    public FluxTransformerCases() {
        this("bfl_checkpoint", "bfl");
    }

    /**
     * Cases whose single-file checkpoint (BFL names) is {@code model.<singleFileKey>}: {@code gguf_file} for GGUF,
     * {@code checkpoint} for fp8 safetensors; {@code suffix} null reports it under the case's own name.
     */
    public FluxTransformerCases(String singleFileKey, String suffix) {
        this.singleFileKey = singleFileKey;
        this.suffix = suffix;
    }

    @Override
    public List<CaseResult> run(GoldenCase c) {
        DType compute = DType.parse(c.spec().path("compute_dtype").asText("float32"));
        JsonNode a = c.spec().path("model").path("bfl_params").path("axes_dim"); // a BFL file has no config: its RoPE axes
        int[] axes = null;
        if (a.isArray()) {
            axes = new int[a.size()];
            for (int i = 0; i < axes.length; i++) axes[i] = a.get(i).asInt();
        }
        int[] bflAxes = axes;
        return CaseRunner.fromEachCheckpoint(c, singleFileKey, suffix,
                (name, path) -> runFrom(c, name, path, Files.isRegularFile(path) ? bflAxes : null, compute));
    }

    /** Runs one case against {@code modelPath}; public so that tests can run the cases on converted copies of the model. */
    public static List<CaseResult> runFrom(GoldenCase c, String name, Path modelPath, int[] axes, DType compute) {
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
