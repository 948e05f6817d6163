package io.mmdit4j.cli;

import io.mmdit4j.hunyuan.HunyuanVideoConfig;
import io.mmdit4j.hunyuan.HunyuanVideoParameters;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code mmdit inspect --config hunyuan-video}: the real-size dry run on meta tensors and its argument errors. */
class HunyuanVideoInspectTest {

    @Test
    void realSizeDryRunChecksShapesAndReportsParametersMemoryAndFlops() {
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("inspect", "--config", "hunyuan-video", "--size", "512x320", "--frames", "61");
        assertEquals(0, r.exit(), r.out() + r.err());
        String out = r.out();
        assertTrue(out.contains("61 frames -> latent 16x40x64, 10240 image tokens, 256 text tokens"), out);
        assertTrue(out.contains("output [1, 16, 16, 40, 64]"), out);
        long params = HunyuanVideoParameters.count(HunyuanVideoConfig.hunyuanVideo());
        assertTrue(out.contains(String.format(java.util.Locale.ROOT, "parameters: %,d (12.82 B)", params)), out);
        assertTrue(out.contains("weights: fp32 51.28 GB, bf16/fp16 25.64 GB"), out);
        assertTrue(out.contains("activations (estimate"), out);
        // 20 dual + 40 single joint attentions and 2 refiner attentions
        assertTrue(out.matches("(?s).*FLOPs per step .*attention [0-9.]+ TFLOP \\(62 calls\\).*"), out);
    }

    @Test
    void framesMustBeFourKPlusOneAndAreForVideoModelsOnly() {
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("inspect", "--config", "hunyuan-video", "--size", "512x320", "--frames", "60");
        assertNotEquals(0, r.exit());
        assertTrue(r.err().contains("4k+1"), r.err());
        r = CheckGoldenCommandTest.run("inspect", "--config", "hunyuan-video", "--size", "520x320", "--frames", "61");
        assertNotEquals(0, r.exit());
        assertTrue(r.err().contains("multiples of 16"), r.err());
        r = CheckGoldenCommandTest.run("inspect", "--config", "flux1-schnell", "--size", "512x512", "--frames", "61");
        assertNotEquals(0, r.exit());
        assertTrue(r.err().contains("--frames applies to video models only"), r.err());
    }
}
