package io.mmdit4j.runtime;

import io.mmdit4j.GoldenData;
import io.mmdit4j.guidance.CfgRows;
import io.mmdit4j.guidance.Direction;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.pipeline.GenerationRequest;
import io.mmdit4j.pipeline.LoadOptions;
import io.mmdit4j.pipeline.Pipeline;
import io.mmdit4j.pipeline.Pipelines;
import io.mmdit4j.hunyuan.TinyHunyuanVideoFolder;
import io.mmdit4j.hidream.HiDreamDemo;
import io.mmdit4j.models.ModelRegistry;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Whole generations of the SD3 (CFG + guidance), HunyuanVideo (guidance, 3-D decode) and HiDream (MoE, LCM sampler, text
 * offloading) pipelines in a loop keep RSS
 * flat: text encoders, every transformer step, the sampler and the VAE leave nothing behind (the FLUX pipeline's loop
 * is in {@link NativeMemoryTest}).
 */
class PipelineMemoryTest {

    @Test
    void sd3GenerationsKeepRssFlat() {
        try (Pipeline pipe = Pipelines.load(GoldenData.root().resolve("sd3_pipeline/models/sd35-tiny-large"), LoadOptions.defaults())) {
            GenerationRequest r = GenerationRequest.builder().prompt("a cat").prompt("a dog").size(32, 32).steps(3).seed(1).maxSequenceLength(16)
                    .cfg(4.5, List.of("blurry")).guide(Direction.of("vivid colors", "washed out").w(2.0).layers(LayerSchedule.from(1)).rows(CfgRows.BOTH))
                    .build();
            assertFlat("SD3 generations", () -> pipe.generate(r).close());
        }
    }

    @Test
    void hunyuanVideoGenerationsKeepRssFlat(@TempDir Path tmp) throws IOException {
        try (Pipeline pipe = Pipelines.load(TinyHunyuanVideoFolder.write(tmp.resolve("hv")), LoadOptions.defaults())) {
            GenerationRequest r = GenerationRequest.builder().prompt("a cat walks").size(32, 32).frames(5).steps(2).guidanceScale(6.0).seed(1)
                    .maxSequenceLength(8).guide(Direction.of("cinematic", "blurred").w(3.5).layers(LayerSchedule.from(1))).build();
            assertFlat("HunyuanVideo generations", () -> pipe.generate(r).close());
        }
    }

    @Test
    void hidreamDemoGenerationsKeepRssFlat(@TempDir Path home) throws IOException {
        ModelRegistry registry = HiDreamDemo.registry(home);
        GenerationRequest r = GenerationRequest.builder().prompt("a lighthouse at dusk").steps(2).seed(1)
                .guide(Direction.preset("aesthetics")).build();
        try (Pipeline pipe = Pipelines.load(HiDreamDemo.NAME, LoadOptions.builder().registry(registry).build())) {
            assertFlat("HiDream demo generations", () -> pipe.generate(r).close());
        }
        // Offloaded, every generation loads and releases the four text encoders and the transformer. Loading makes Java
        // garbage (configs, headers) that walks a test JVM's large G1 young generation into RSS until it has been touched
        // once (the CLI runs with an 8 MB one); a collection after each run keeps that out of the native-memory check,
        // and no native object may be left for the garbage collector to free.
        try (Pipeline pipe = Pipelines.load(HiDreamDemo.NAME, LoadOptions.builder().registry(registry).offloadText(true).build())) {
            Runnable run = () -> {
                pipe.generate(r).close();
                System.gc();
            };
            for (int i = 0; i < 10; i++) run.run();
            long pointers = org.bytedeco.javacpp.Pointer.totalCount();
            assertFlat("HiDream demo generations with text offloading", run);
            assertTrue(org.bytedeco.javacpp.Pointer.totalCount() <= pointers + 16, "native objects left to the GC: "
                    + pointers + " -> " + org.bytedeco.javacpp.Pointer.totalCount() + " over 50 generations");
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
