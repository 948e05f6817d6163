package io.mmdit4j.runtime;

import io.mmdit4j.GoldenData;
import io.mmdit4j.flux.FluxInputs;
import io.mmdit4j.flux.FluxTransformer;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.io.SafetensorsFile;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** Repeated forwards must not leak native memory: every temporary dies with its scope. */
class NativeMemoryTest {

    static long rssKb() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmRSS:")) return Long.parseLong(line.replaceAll("[^0-9]", ""));
        }
        throw new IllegalStateException("no VmRSS in /proc/self/status");
    }

    @Test
    void twoHundredForwardsKeepRssFlat() throws IOException {
        try (FluxTransformer model = FluxTransformer.load(GoldenData.fluxModel("dev").resolve("transformer"), DType.F32);
             SafetensorsFile in = SafetensorsFile.open(GoldenData.fluxCase("dev_modg_w3_s1").resolve("inputs.safetensors"));
             PointerScope outer = new PointerScope()) {
            FluxInputs inputs = new FluxInputs(in.load("hidden_states"), in.load("encoder_hidden_states"),
                    in.load("pooled_projections"), in.load("timestep"), in.load("guidance"), in.load("img_ids"), in.load("txt_ids"));
            try (ModulationGuidance g = ModulationGuidance.builder()
                    .term(model.guidanceDelta(in.load("pooled_pos"), in.load("pooled_neg")), 3.0, LayerSchedule.from(1)).build()) {
                for (int i = 0; i < 50; i++) run(model, inputs, g, i); // warm-up: allocator pools, JIT
                long before = rssKb();
                for (int i = 0; i < 200; i++) run(model, inputs, g, i);
                long after = rssKb();
                long growthMb = (after - before) / 1024;
                // Leaked temporaries show up here as tens to hundreds of MB (a forward makes ~300 of them); allow allocator noise only.
                assertTrue(growthMb < 40, "RSS grew by " + growthMb + " MB over 200 forwards (" + before / 1024 + " -> " + after / 1024 + " MB)");
            }
        }
    }

    private static void run(FluxTransformer model, FluxInputs inputs, ModulationGuidance g, int step) {
        Tensor out = step % 2 == 0 ? model.forward(inputs) : model.forward(inputs, g, step);
        out.close();
    }
}
