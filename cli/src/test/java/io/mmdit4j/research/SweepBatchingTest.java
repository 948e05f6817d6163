package io.mmdit4j.research;

import io.mmdit4j.guidance.NormControl;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Rows of one batch carrying different guidance (weights, schedules, step windows, prompts, seeds, or none) give the images
 * they give one by one, within the flux_pipeline golden tolerance (atol = rtol = 2e-4 on the image).
 */
class SweepBatchingTest {
    private static final double ATOL = 2e-4, RTOL = 2e-4; // golden flux_pipeline case.json, "image"
    private static final SweepDirection VIVID = new SweepDirection("vivid", "vivid colors, sharp focus", "washed out, blurry");
    private static PipelineSweepModel model;

    @BeforeAll
    static void load() {
        model = DemoModel.load(DemoModel.settings(32, 2));
    }

    @AfterAll
    static void close() {
        model.close();
    }

    private static float[] image(Tensor images, int row) {
        return Tensors.toFloats(images.select(0, row));
    }

    private static double maxExcess(float[] a, float[] b) {
        double worst = 0;
        for (int i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) - (ATOL + RTOL * Math.abs(b[i])));
        return worst;
    }

    private static double maxAbs(float[] a, float[] b) {
        double m = 0;
        for (int i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
        return m;
    }

    private void check(List<SweepCell> cells, NormControl norm) {
        try (Tensor batch = model.generate(cells, norm, null, null)) {
            assertEquals(cells.size(), batch.size(0));
            for (int i = 0; i < cells.size(); i++) {
                try (Tensor alone = model.generate(List.of(cells.get(i)), norm, null, null)) {
                    float[] a = image(batch, i), b = image(alone, 0);
                    assertTrue(maxExcess(a, b) <= 0, "row " + i + " (" + cells.get(i) + "): max |batch - alone| = " + maxAbs(a, b));
                }
            }
            // the test can fail: guided rows differ from their unguided reference
            try (Tensor ref = model.generate(List.of(cells.get(1).referenceCell()), NormControl.NONE, null, null)) {
                assertTrue(maxAbs(image(batch, 1), image(ref, 0)) > 1e-2, "row 1 is guided");
            }
        }
    }

    @Test
    void rowsWithDifferentGuidanceMatchTheirImagesMadeAlone() {
        check(List.of(SweepCell.reference("a red fox", 0),
                new SweepCell("a red fox", 1, VIVID, 2.0, "1-", "all", NormControl.NONE),
                new SweepCell("a lighthouse at dusk", 0, SweepDirection.preset("aesthetics"), 4.0, "3~2", "0", NormControl.NONE),
                new SweepCell("a lighthouse at dusk", 2, VIVID, -1.5, "all", "1", NormControl.NONE)), NormControl.NONE);
    }

    @Test
    void normControlledRowsToo() {
        check(List.of(SweepCell.reference("a red fox", 3),
                new SweepCell("a red fox", 3, VIVID, 3.0, "1-", "all", NormControl.KEEP_TEMB_NORM),
                new SweepCell("a red fox", 4, VIVID, 5.0, "0-2", "all", NormControl.KEEP_TEMB_NORM)), NormControl.KEEP_TEMB_NORM);
    }
}
