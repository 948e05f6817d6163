package io.mmdit4j.sd3;

import io.mmdit4j.GoldenData;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.ProcessMemory;
import org.bytedeco.javacpp.PointerScope;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** Repeated SD3 forwards (plain and guided, dual-attention model) must not leak native memory. */
class Sd3NativeMemoryTest {

    @Test
    void repeatedForwardsKeepRssFlat() {
        Sd3Transformer model = Sd3Transformer.load(GoldenData.root().resolve("sd3_transformer/models/sd35m"), DType.F32);
        try (model; SafetensorsFile in = SafetensorsFile.open(GoldenData.root().resolve("sd3_transformer/cases/sd35m_modg_w3_s1/inputs.safetensors"));
             PointerScope outer = new PointerScope();
             ModulationGuidance g = ModulationGuidance.builder()
                     .term(model.guidanceDelta(in.load("pooled_pos"), in.load("pooled_neg")), 3.0, LayerSchedule.from(1)).build()) {
            var h = in.load("hidden_states");
            var e = in.load("encoder_hidden_states");
            var p = in.load("pooled_projections");
            var t = in.load("timestep");
            for (int i = 0; i < 30; i++) model.forward(h, e, p, t, i % 2 == 0 ? ModulationGuidance.none() : g, i).close(); // warm-up
            long before = ProcessMemory.rssMb();
            for (int i = 0; i < 150; i++) model.forward(h, e, p, t, i % 2 == 0 ? ModulationGuidance.none() : g, i).close();
            long growthMb = ProcessMemory.rssMb() - before;
            assertTrue(growthMb < 40, "RSS grew by " + growthMb + " MB over 150 forwards");
        }
    }
}
