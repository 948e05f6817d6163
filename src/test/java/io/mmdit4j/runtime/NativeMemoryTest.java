package io.mmdit4j.runtime;

import io.mmdit4j.GoldenData;
import io.mmdit4j.flux.FluxInputs;
import io.mmdit4j.guidance.Direction;
import io.mmdit4j.pipeline.GenerationRequest;
import io.mmdit4j.pipeline.LoadOptions;
import io.mmdit4j.pipeline.Pipeline;
import io.mmdit4j.pipeline.Pipelines;
import io.mmdit4j.flux.FluxTransformer;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.io.SafetensorsFile;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;

import java.io.IOException;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** Repeated forwards must not leak native memory: every temporary dies with its scope. */
class NativeMemoryTest {


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
                long before = ProcessMemory.rssMb();
                for (int i = 0; i < 200; i++) run(model, inputs, g, i);
                long after = ProcessMemory.rssMb();
                long growthMb = after - before;
                // Leaked temporaries show up here as tens to hundreds of MB (a forward makes ~300 of them); allow allocator noise only.
                assertTrue(growthMb < 40, "RSS grew by " + growthMb + " MB over 200 forwards (" + before + " -> " + after + " MB)");
            }
        }
    }

    @Test
    void repeatedGenerationsKeepRssFlat() {
        try (Pipeline pipe = Pipelines.load(GoldenData.root().resolve("flux_pipeline/models/flux-tiny-dev"), LoadOptions.defaults())) {
            GenerationRequest r = GenerationRequest.builder().prompt("a cat").prompt("a dog").size(32, 32).steps(3).guidanceScale(3.5).seed(1)
                    .maxSequenceLength(16).guide(Direction.of("vivid colors", "washed out").w(3.0).layers(LayerSchedule.from(1))).build();
            for (int i = 0; i < 15; i++) pipe.generate(r).close(); // warm-up
            long before = ProcessMemory.rssMb();
            for (int i = 0; i < 60; i++) pipe.generate(r).close();
            long growthMb = ProcessMemory.rssMb() - before;
            // Each generation runs text encoders, 3 transformer steps and the VAE; leaked temporaries would add up fast.
            assertTrue(growthMb < 40, "RSS grew by " + growthMb + " MB over 60 generations");
        }
    }

    private static void run(FluxTransformer model, FluxInputs inputs, ModulationGuidance g, int step) {
        Tensor out = step % 2 == 0 ? model.forward(inputs) : model.forward(inputs, g, step);
        out.close();
    }
}
