package io.mmdit4j.pipeline;

import io.mmdit4j.GoldenData;
import io.mmdit4j.golden.CaseResult;
import io.mmdit4j.golden.GoldenRunner;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.List;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The image-to-image, inpainting and scale-wise golden areas through {@code check-golden}'s runner: every output of every case
 * passes (cases with one image draw from {@code params.seed}, so the order of the draws is checked, not only the arithmetic).
 */
class ImageToImageGoldenTest {
    @ParameterizedTest
    @CsvSource({"flux_img2img_pipeline, 4", "sd3_img2img_pipeline, 4", "flux_inpaint_pipeline, 3", "sd3_swd_pipeline, 7"})
    void everyCasePasses(String area, int atLeast) {
        List<CaseResult> results = new GoldenRunner().run(List.of(GoldenData.root().resolve(area)), r -> { });
        List<String> bad = results.stream().filter(r -> r.status() != CaseResult.Status.PASS).map(CaseResult::line).collect(Collectors.toList());
        assertTrue(bad.isEmpty(), String.join("\n", bad));
        long cases = results.stream().map(CaseResult::caseName).distinct().count();
        assertTrue(cases >= atLeast, area + ": " + cases + " cases");
    }
}
