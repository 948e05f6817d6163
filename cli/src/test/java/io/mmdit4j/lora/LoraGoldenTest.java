package io.mmdit4j.lora;

import com.fasterxml.jackson.databind.JsonNode;
import io.mmdit4j.GoldenData;
import io.mmdit4j.golden.CaseResult;
import io.mmdit4j.golden.GoldenCase;
import io.mmdit4j.golden.GoldenRunner;
import io.mmdit4j.golden.LoraCases;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.List;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every lora golden case (FLUX PEFT and kohya, SD3 PEFT at scales 0.5 and 1), merged weights included. */
class LoraGoldenTest {
    private static List<CaseResult> results;

    @BeforeAll
    static void runAllCases() {
        results = new GoldenRunner().run(List.of(GoldenData.root().resolve("lora")), r -> { });
    }

    @Test
    void allLoraCasesPassWithinTheirTolerances() {
        List<String> failures = results.stream().filter(r -> r.status() != CaseResult.Status.PASS).map(CaseResult::line).collect(Collectors.toList());
        assertTrue(failures.isEmpty(), "golden failures:\n" + String.join("\n", failures));
        assertEquals(6, results.stream().map(CaseResult::caseName).distinct().count());
        for (CaseResult r : results) {
            if (r.output().equals("sample")) assertTrue(r.status() == CaseResult.Status.PASS, r.line());
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"flux_peft_scale1", "flux_kohya_scale1", "sd3_peft_scale1"})
    void everyTargetedLinearIsMergedLikeDiffusers(String name) {
        GoldenCase c = GoldenCase.load(GoldenData.root().resolve("lora/cases").resolve(name));
        List<CaseResult> results = LoraGoldenTest.results.stream().filter(r -> r.caseName().equals(c.name())).collect(Collectors.toList());
        JsonNode targeted = c.params().path("targeted_modules");
        List<String> merged = results.stream().filter(r -> r.output().startsWith("merged.") && r.status() == CaseResult.Status.PASS)
                .map(r -> r.output().substring("merged.".length(), r.output().length() - ".weight".length())).sorted().collect(Collectors.toList());
        assertEquals(targeted.size(), merged.size(), "one merged weight per targeted module");
        for (JsonNode t : targeted) assertTrue(merged.contains(t.asText()), "merged " + t.asText());
        if (name.contains("kohya")) {
            long converted = results.stream().filter(r -> r.output().startsWith("converted.") && r.status() == CaseResult.Status.PASS).count();
            assertEquals(c.compare().size() - 2 - targeted.size(), converted, "every key of diffusers' conversion");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"flux_kohya_scale1", "flux_peft_scale0.5"})
    void loraOnTheModelLoadedFromTheBflFileGivesTheSameNumbers(String name) {
        GoldenCase c = GoldenCase.load(GoldenData.root().resolve("lora/cases").resolve(name));
        Path bfl = GoldenData.fluxModel("schnell").resolve("flux1-tiny-schnell.safetensors");
        List<CaseResult> results = LoraCases.runFlux(c, name + "[bfl]", bfl, null);
        List<String> failures = results.stream().filter(r -> r.status() != CaseResult.Status.PASS).map(CaseResult::line).collect(Collectors.toList());
        assertTrue(failures.isEmpty(), "golden failures:\n" + String.join("\n", failures));
        assertTrue(results.stream().anyMatch(r -> r.output().equals("sample")));
    }
}
