package io.mmdit4j.golden;

import com.fasterxml.jackson.databind.JsonNode;
import io.mmdit4j.guidance.BlockConditioning;
import io.mmdit4j.guidance.ConditioningObserver;
import io.mmdit4j.guidance.GuidanceTerm;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.guidance.StepWindow;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.pytorch.Tensor;

import java.util.HashMap;
import java.util.Map;
import java.util.function.BinaryOperator;

/**
 * The {@code modulation_guidance} block of a transformer case (w, start/end layer, the pooled p+/p− inputs) as a
 * guidance plan, and the observer that records what the cases compare besides the sample: {@code temb} and, when
 * guided, the vector of the first guided block ({@code temb_guided}). The recorded tensors are owned by {@link #actual}.
 */
final class CaseGuidance implements ConditioningObserver, AutoCloseable {
    final ModulationGuidance plan;
    final Map<String, Tensor> actual = new HashMap<>();
    private final int guidedLayer;

    private CaseGuidance(ModulationGuidance plan, int guidedLayer) {
        this.plan = plan;
        this.guidedLayer = guidedLayer;
    }

    /** @param direction the model's guidance delta from {@code (pooled_pos, pooled_neg)} */
    static CaseGuidance read(GoldenCase c, SafetensorsFile in, BinaryOperator<Tensor> direction) {
        return read(c, in, direction, null, false);
    }

    /**
     * As {@link #read(GoldenCase, SafetensorsFile, BinaryOperator)} with per-row weights of the transformer batch (null:
     * every row +1) and, for HiDream, the final layer guided too; {@code temb_guided} is then the final layer's vector.
     */
    static CaseGuidance read(GoldenCase c, SafetensorsFile in, BinaryOperator<Tensor> direction, double[] rowWeights, boolean guideFinalNorm) {
        JsonNode mg = c.params().path("modulation_guidance");
        if (!mg.isObject()) return new CaseGuidance(ModulationGuidance.none(), -1);
        Tensor delta = direction.apply(in.load("pooled_pos"), in.load("pooled_neg"));
        return new CaseGuidance(ModulationGuidance.builder().guideFinalNorm(guideFinalNorm)
                .add(new GuidanceTerm("case", delta, mg.path("w").asDouble(), layers(mg), StepWindow.all(), rowWeights)).build(),
                guideFinalNorm ? FINAL : mg.path("start_layer").asInt(0));
    }

    /** {@code guidedLayer} meaning the final layer's vector. */
    private static final int FINAL = Integer.MAX_VALUE;

    /** {@code start_layer} to {@code end_layer} (inclusive; open when absent or null). */
    static LayerSchedule layers(JsonNode mg) {
        int start = mg.path("start_layer").asInt(0);
        JsonNode end = mg.get("end_layer");
        return end == null || end.isNull() ? LayerSchedule.from(start) : LayerSchedule.interval(start, end.asInt());
    }

    @Override
    public void onConditioning(int step, BlockConditioning cond) {
        actual.put("temb", Tensors.keep(cond.temb().clone()));
        if (guidedLayer >= 0) {
            actual.put("temb_guided", Tensors.keep((guidedLayer == FINAL ? cond.finalVector() : cond.vector(guidedLayer)).clone()));
        }
    }

    /** Closes the plan and every recorded tensor. */
    @Override
    public void close() {
        plan.close();
        Tensors.closeAll(actual.values());
    }
}
