package io.mmdit4j.pipeline;

import io.mmdit4j.BrokenModels;
import io.mmdit4j.GoldenData;
import io.mmdit4j.sampling.NonFiniteException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Issue item 4: a generation that goes non-finite fails naming the first step, instead of decoding to a black image. */
class NonFiniteResultsTest {
    private static final Path MODEL = GoldenData.root().resolve("flux_pipeline/models/flux-tiny-dev");

    private static GenerationRequest.Builder small() {
        return GenerationRequest.builder().prompt("a fox").size(32, 32).steps(2).maxSequenceLength(16);
    }

    @Test
    void nanWeightsFailNamingTheFirstStepInsteadOfMakingABlackImage(@TempDir Path tmp) throws IOException {
        Path broken = BrokenModels.nanTransformer(MODEL, tmp.resolve("nan-model"));
        try (Pipeline p = Pipelines.load(broken.toString(), LoadOptions.defaults())) {
            NonFiniteException e = assertThrows(NonFiniteException.class, () -> p.generate(small().build()).close());
            assertEquals(NonFiniteException.Stage.STEP, e.stage());
            assertEquals(0, e.step(), e.getMessage());
            assertTrue(e.getMessage().contains("denoising step 1 of 2"), e.getMessage());
        }
    }
}
