package io.mmdit4j.pipeline;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.mmdit4j.GoldenData;
import io.mmdit4j.guidance.Direction;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Issue item 4: guidance weights are bounded wherever they come from (API, settings records, schedules), before any work. */
class GuidanceWeightLimitsTest {
    private static final Path MODEL = GoldenData.root().resolve("flux_pipeline/models/flux-tiny-dev");

    private static GenerationRequest.Builder small() {
        return GenerationRequest.builder().prompt("a fox").size(32, 32).steps(2).maxSequenceLength(16);
    }

    @Test
    void guidanceWeightsAreBoundedEverywhere() throws IOException {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Direction.preset("aesthetics").w(1e308));
        assertTrue(e.getMessage().contains("w must be in -100..100, got 1.0E308"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Direction.of("a", "b").w(50).rowWeights(1, 3), "w x row weight 150");
        PreparedModel m = Pipelines.prepare(MODEL.toString(), LoadOptions.defaults());
        InvalidRequestException r = assertThrows(InvalidRequestException.class,
                () -> m.resolve(small().guide(Direction.preset("aesthetics").w(3).layers("1-:1e300")).build()));
        assertTrue(r.getMessage().contains("must stay within 1000"), r.getMessage());
        r = assertThrows(InvalidRequestException.class, () -> GenerationSettings.read(new ObjectMapper().readTree(
                "{\"prompts\": [\"a\"], \"modulation_guidance\": [{\"pos\": \"p\", \"neg\": \"n\", \"w\": 1e308}]}"), "x.png"));
        assertTrue(r.getMessage().startsWith("x.png") && r.getMessage().contains("w must be in -100..100"), r.getMessage());
    }
}
