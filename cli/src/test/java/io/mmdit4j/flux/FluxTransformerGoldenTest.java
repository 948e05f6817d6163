package io.mmdit4j.flux;

import io.mmdit4j.GoldenData;
import io.mmdit4j.golden.CaseResult;
import io.mmdit4j.golden.GoldenRunner;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.runtime.DType;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Collectors;

import static org.bytedeco.pytorch.global.torch.equal;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every flux_transformer golden case, from the diffusers folder and from the BFL single file. */
class FluxTransformerGoldenTest {

    @Test
    void allFluxTransformerCasesPassWithinTheirTolerances() {
        List<CaseResult> results = new GoldenRunner().run(List.of(GoldenData.root().resolve("flux_transformer")), r -> { });
        List<String> failures = results.stream().filter(r -> r.status() != CaseResult.Status.PASS)
                .map(CaseResult::line).collect(Collectors.toList());
        assertTrue(failures.isEmpty(), "golden failures:\n" + String.join("\n", failures));
        long cases = results.stream().map(r -> r.caseName()).distinct().count();
        assertEquals(28, cases, "14 cases, each from the diffusers folder and the BFL file");
        assertTrue(results.stream().anyMatch(r -> r.output().equals("temb_guided")), "guided cases compare temb_guided");
    }

    @ParameterizedTest
    @ValueSource(strings = {"schnell_plain", "dev_modg_w3_s1", "schnell_bf16_compute"})
    void bflSingleFileGivesTheSameNumbersAsTheDiffusersFolder(String caseName) {
        Path caseDir = GoldenData.fluxCase(caseName);
        String variant = caseName.startsWith("dev") ? "dev" : caseName.contains("bf16") ? "schnell_bf16" : "schnell";
        DType compute = caseName.contains("bf16_compute") ? DType.BF16 : DType.F32;
        Path model = GoldenData.fluxModel(variant);
        Path bfl = model.resolve("flux1-tiny-" + variant + ".safetensors");
        try (FluxTransformer fromDiffusers = FluxTransformer.load(model.resolve("transformer"), compute);
             FluxTransformer fromBfl = FluxTransformer.load(bfl, compute);
             SafetensorsFile in = SafetensorsFile.open(caseDir.resolve("inputs.safetensors"));
             PointerScope scope = new PointerScope()) {
            assertEquals(fromDiffusers.config(), fromBfl.config(), "config detected from the BFL weights");
            FluxInputs inputs = inputs(in, fromDiffusers.config());
            Tensor a = fromDiffusers.forward(inputs);
            Tensor b = fromBfl.forward(inputs);
            assertTrue(equal(a, b), "BFL and diffusers outputs must be bit-identical");
        }
    }

    @Test
    void weightsStoredInTheComputeDtypeAreViewsOfTheFileMapping() throws java.io.IOException {
        Path bf16 = GoldenData.fluxModel("schnell_bf16").resolve("transformer");
        long fileSize = java.nio.file.Files.size(bf16.resolve("diffusion_pytorch_model.safetensors"));
        try (FluxTransformer same = FluxTransformer.load(bf16, DType.BF16); FluxTransformer upcast = FluxTransformer.load(bf16, DType.F32)) {
            Tensor w = same.x_embedder.weight();
            assertEquals(fileSize, w.storage().nbytes(), "a bf16 weight computed in bf16 views the whole mapped file");
            assertEquals(w.numel() * 4, upcast.x_embedder.weight().storage().nbytes(), "fp32 compute owns an upcast copy");
        }
    }

    @Test
    void schnellAndDevConfigsMatchTheReleasedModels() {
        FluxConfig s = FluxConfig.schnell();
        assertEquals(3072, s.innerDim());
        assertEquals(57, s.totalBlocks());
        assertFalse(s.guidanceEmbeds());
        assertTrue(FluxConfig.dev().guidanceEmbeds());
        assertEquals(12288, s.mlpHidden());
    }

    static FluxInputs inputs(SafetensorsFile in, FluxConfig c) {
        List<String> missing = new ArrayList<>();
        for (String k : List.of("hidden_states", "encoder_hidden_states", "pooled_projections", "timestep", "img_ids", "txt_ids")) {
            if (in.info(k) == null) missing.add(k);
        }
        assertTrue(missing.isEmpty(), "inputs missing " + missing);
        return new FluxInputs(in.load("hidden_states"), in.load("encoder_hidden_states"), in.load("pooled_projections"),
                in.load("timestep"), c.guidanceEmbeds() ? in.load("guidance") : null, in.load("img_ids"), in.load("txt_ids"));
    }
}
