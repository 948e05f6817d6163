package io.mmdit4j.runtime;

import io.mmdit4j.GoldenData;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.hunyuan.HunyuanVideoPipeline;
import io.mmdit4j.hunyuan.TinyHunyuanVideoFolder;
import io.mmdit4j.sd3.Sd3Pipeline;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Whole generations of the SD3 (CFG + guidance) and HunyuanVideo (guidance, 3-D decode) pipelines in a loop keep RSS
 * flat: text encoders, every transformer step, the sampler and the VAE leave nothing behind (the FLUX pipeline's loop
 * is in {@link NativeMemoryTest}).
 */
class PipelineMemoryTest {

    @Test
    void sd3GenerationsKeepRssFlat() {
        try (Sd3Pipeline pipe = Sd3Pipeline.load(GoldenData.root().resolve("sd3_pipeline/models/sd35-tiny-large"), DType.F32, DeviceSpec.CPU)) {
            List<Sd3Pipeline.Direction> g = List.of(new Sd3Pipeline.Direction("d", "vivid colors", "washed out", 2.0, LayerSchedule.from(1),
                    null, null, Sd3Pipeline.CfgRows.BOTH));
            Sd3Pipeline.Request r = new Sd3Pipeline.Request(List.of("a cat", "a dog"), "blurry", 1, 32, 32, 3, 4.5, new long[] {1}, 16, g);
            assertFlat("SD3 generations", () -> pipe.generate(r).close());
        }
    }

    @Test
    void hunyuanVideoGenerationsKeepRssFlat(@TempDir Path tmp) throws IOException {
        try (HunyuanVideoPipeline pipe = HunyuanVideoPipeline.load(TinyHunyuanVideoFolder.write(tmp.resolve("hv")), DType.F32, DeviceSpec.CPU)) {
            List<HunyuanVideoPipeline.Direction> g = List.of(new HunyuanVideoPipeline.Direction("d", "cinematic", "blurred", 3.5,
                    LayerSchedule.from(1), null, null));
            HunyuanVideoPipeline.Request r = new HunyuanVideoPipeline.Request(List.of("a cat walks"), 1, 32, 32, 5, 2, 6.0, new long[] {1}, 8, g, null);
            assertFlat("HunyuanVideo generations", () -> pipe.generate(r).close());
        }
    }

    /** 10 warm-up runs (allocator pools, JIT), then 40 measured: leaked temporaries of ~hundreds per run would add up. */
    private static void assertFlat(String what, Runnable run) {
        for (int i = 0; i < 10; i++) run.run();
        long before = ProcessMemory.rssMb();
        for (int i = 0; i < 40; i++) run.run();
        long growthMb = ProcessMemory.rssMb() - before;
        assertTrue(growthMb < 40, what + ": RSS grew by " + growthMb + " MB over 40 runs");
    }
}
