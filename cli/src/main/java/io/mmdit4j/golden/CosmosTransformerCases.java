package io.mmdit4j.golden;

import com.fasterxml.jackson.databind.JsonNode;
import io.mmdit4j.cosmos.CosmosTransformer;
import io.mmdit4j.guidance.BlockConditioning;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.bytedeco.pytorch.global.torch.stack;
import static org.bytedeco.pytorch.global.torch.zeros;

/**
 * {@code cosmos_transformer} cases: the reference's {@code CosmosWithPooledCLIP.forward} (params {@code w}, {@code start_layer},
 * {@code apply_clip_pooled}, p+/p− given or not) from each way the model can be loaded: the diffusers folder with
 * {@code pooled_adapter.safetensors} (the case), with the reference's {@code checkpoint_<step>.pt} ({@code [pt]}), and the
 * whole wrapper state dict alone ({@code [wrapper]}). A case without p+/p− but with {@code w ≠ 0} is the sampler's
 * unconditional call: it takes the pooled term in the blocks a plan of that {@code w} and start layer reaches.
 */
public final class CosmosTransformerCases implements CaseRunner {

    @Override
    public List<CaseResult> run(GoldenCase c) {
        JsonNode model = c.spec().path("model");
        List<CaseResult> results = new ArrayList<>();
        if (model.hasNonNull("diffusers_folder") && model.hasNonNull("adapter_safetensors")) {
            results.addAll(runFrom(c, c.name(), c.resolve(model.get("diffusers_folder").asText()), c.resolve(model.get("adapter_safetensors").asText())));
        }
        if (model.hasNonNull("diffusers_folder") && model.hasNonNull("reference_checkpoint")) {
            results.addAll(runFrom(c, c.name() + "[pt]", c.resolve(model.get("diffusers_folder").asText()), c.resolve(model.get("reference_checkpoint").asText())));
        }
        if (model.hasNonNull("wrapper_state_dict")) {
            results.addAll(runFrom(c, c.name() + "[wrapper]", c.resolve(model.get("wrapper_state_dict").asText()), null));
        }
        if (results.isEmpty()) results.add(CaseResult.error(c.name(), "-", "case names no model (diffusers_folder + adapter, wrapper_state_dict)"));
        return results;
    }

    /** Runs one case against {@code modelPath} (and {@code adapter}); public so that tests can run it on converted copies of the model. */
    public static List<CaseResult> runFrom(GoldenCase c, String name, Path modelPath, Path adapter) {
        if (!Files.exists(modelPath)) return List.of(CaseResult.error(name, "-", "model not found: " + modelPath));
        if (adapter != null && !Files.exists(adapter)) return List.of(CaseResult.error(name, "-", "adapter not found: " + adapter));
        DType compute = DType.parse(c.spec().path("compute_dtype").asText("float32"));
        JsonNode p = c.params();
        double w = p.path("w").asDouble(0);
        int start = p.path("start_layer").asInt(0);
        boolean applyPooled = p.path("apply_clip_pooled").asBoolean(true);
        boolean given = p.path("positive_negative_given").asBoolean(false);
        Map<String, Tensor> actual = new HashMap<>();
        try (CosmosTransformer m = CosmosTransformer.load(modelPath, adapter, compute, DeviceSpec.CPU);
             SafetensorsFile in = c.inputs(); SafetensorsFile out = c.outputs(); PointerScope scope = new PointerScope()) {
            int n = m.numGuidedBlocks();
            Tensor hidden = in.load("hidden_states");
            int batch = (int) hidden.size(0);
            Tensor pooled = applyPooled && in.info("pooled_projections") != null ? in.load("pooled_projections") : null;
            Tensor delta = given ? m.guidanceDelta(in.load("pooled_projections_positive"), in.load("pooled_projections_negative"))
                    : Tensors.keep(zeros(new long[] {1, m.config().conditioningDim()}));
            try (ModulationGuidance conditional = ModulationGuidance.builder().term(delta, w, LayerSchedule.from(start)).build()) {
                ModulationGuidance plan = given ? conditional : ModulationGuidance.none();
                boolean[][] blocks = CosmosTransformer.pooledBlocks(conditional, 0, batch, n); // the unconditional call follows the conditional plan's blocks
                Tensor sample = m.forward(hidden, in.load("timestep"), in.load("encoder_hidden_states"), in.load("padding_mask"), pooled, plan, 0,
                        blocks, (step, cond) -> record(actual, cond, n));
                actual.put("sample", sample);
                Tensor[] te = m.timeEmbedding(in.load("timestep"));
                Tensors.closeAll(List.of(te[0]));
                actual.put("embedded_timestep", te[1]);
                if (pooled != null || given) {
                    try (PointerScope s = new PointerScope()) { // TE(pooled) or 0, [+ w·(TE(p+) − TE(p−))]: the reference's pooled_emb
                        Tensor e = pooled != null ? m.adapter().embed(pooled) : zeros(new long[] {batch, m.config().conditioningDim()});
                        BlockConditioning pc = plan.resolve(e, 0, n);
                        actual.put("pooled_emb", Tensors.keep(pc.vector(n - 1).clone()));
                    }
                }
            }
            return Outputs.compare(c, name, actual, out);
        } catch (RuntimeException e) {
            return List.of(CaseResult.failed(name, "-", e));
        } finally {
            Tensors.closeAll(actual.values());
        }
    }

    private static void record(Map<String, Tensor> actual, BlockConditioning cond, int n) {
        actual.put("temb", Tensors.keep(cond.temb().clone()));
        TensorVector v = new TensorVector();
        for (int i = 0; i < n; i++) v.push_back(cond.vector(i));
        actual.put("block_temb", Tensors.keep(stack(v, 0)));
    }
}
