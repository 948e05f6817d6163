package io.mmdit4j.cli;

import io.mmdit4j.io.quant.CheckpointQuantizer;
import org.junit.jupiter.api.Test;

import java.util.Locale;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code inspect --quant --budget}: real-size dry runs of FLUX.1-dev in every quantized format, bytes per format, device plans. */
class InspectQuantizedTest {

    @Test
    void fluxDevQ8_0FitsA16GbDeviceWithTheTextEncodersOffloaded() {
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("inspect", "--config", "flux1-dev", "--quant", "q8_0", "--budget", "16GB");
        assertEquals(0, r.exit(), r.err());
        String out = r.out();
        assertTrue(out.contains("quantized as q8_0: 494 of 504 Linears dequantize per forward"), out);
        assertTrue(out.contains("weights by stored format: Q8_0 12.57 GB, bfloat16 0.13 GB; total 12.71 GB"), out);
        assertTrue(out.contains("everything resident:") && out.contains("does not fit"), out);
        assertTrue(out.matches("(?s).*text encoders offloaded \\(encode, then back to the host\\): +1[0-6]\\.\\d\\d GB  fits.*"), out);
        assertTrue(out.contains("plan: text encoders offloaded (encode, then back to the host)"), out);
        r = CheckGoldenCommandTest.run("inspect", "--config", "flux1-dev", "--quant", "q8_0", "--budget", "12GB");
        assertTrue(r.out().contains("plan: text encoders and transformer blocks offloaded (--offload blocks)"), r.out());
        r = CheckGoldenCommandTest.run("inspect", "--config", "flux1-dev", "--budget", "12 parsecs");
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("--budget 12 parsecs: expected a size such as 24GB"), r.err());
    }

    @Test
    void everyQuantizedFormatDryRunsAtRealSize() {
        for (CheckpointQuantizer.Target t : CheckpointQuantizer.Target.values()) {
            String name = t.name().toLowerCase(Locale.ROOT).replace('_', t.fp8() ? '-' : '_');
            CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("inspect", "--config", "flux1-schnell", "--quant", name, "--size", "256x256", "--text", "64");
            assertEquals(0, r.exit(), name + ": " + r.err());
            assertTrue(r.out().contains("Linears dequantize per forward (checked on meta tensors)"), name + ": " + r.out());
        }
    }

    @Test
    void quantAndBudgetAreRefusedForOtherFamilies() {
        for (String config : new String[] {"sd3.5-large", "hunyuan-video"}) {
            CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("inspect", "--config", config, "--quant", "q8_0");
            assertEquals(2, r.exit(), r.err());
            assertTrue(r.err().contains("--quant and --budget: FLUX models only so far"), r.err());
        }
    }
}
