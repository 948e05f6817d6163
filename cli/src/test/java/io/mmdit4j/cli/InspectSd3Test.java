package io.mmdit4j.cli;

import io.mmdit4j.GoldenData;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code mmdit inspect} on SD3 / SD3.5: names, diffusers folders, and the size limit of the positional table. */
class InspectSd3Test {

    @Test
    void sd35LargeDryRunReportsShapesParametersAndFlops() {
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("inspect", "--config", "sd3.5-large", "--size", "1024x1024");
        assertEquals(0, r.exit(), r.out() + r.err());
        assertTrue(r.out().contains("layers=38, heads=38x64"), r.out());
        assertTrue(r.out().contains("image 1024x1024 -> latent 128x128, 4096 image tokens, 333 text tokens"), r.out());
        assertTrue(r.out().contains("output [1, 16, 128, 128]"), r.out());
        assertTrue(r.out().contains("parameters: 8,056,627,520 (8.06 B)"), r.out());
        assertTrue(r.out().contains("FLOPs per step"), r.out());
    }

    @Test
    void goldenFolderIsRecognisedAsSd3AndOversizedImagesAreRejected() {
        String folder = GoldenData.root().resolve("sd3_transformer/models/sd35m").toString();
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("inspect", "--config", folder, "--size", "64x96");
        assertEquals(0, r.exit(), r.out() + r.err());
        assertTrue(r.out().contains("dual_attention_layers=[0]") && r.out().contains("latent 8x12, 24 image tokens"), r.out());
        r = CheckGoldenCommandTest.run("inspect", "--config", "sd3-medium", "--size", "4096x4096");
        assertTrue(r.exit() != 0);
        assertTrue(r.err().contains("exceeds the positional table of 192 patches per side"), r.err());
    }
}
