package io.mmdit4j.io;

import io.mmdit4j.flux.FluxTransformer;
import io.mmdit4j.pipeline.LoadOptions;
import io.mmdit4j.pipeline.Pipelines;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The batched weight upload's plan, on {@code meta} (the CUDA copies themselves have never run): every weight of a load goes
 * through the session once, in batches that fit one staging buffer, a weight larger than a buffer alone; on the CPU nothing
 * is planned (weights stay views of the file).
 */
class WeightUploadTest {
    private static final long STAGING = 16 << 10; // 16 KB: the tiny demo's weights (1 to 64 KB) make several batches

    private static Path demoTransformer() {
        return Pipelines.prepare("flux-tiny-demo", LoadOptions.defaults()).path().resolve("transformer");
    }

    @Test
    void onMetaEveryWeightIsPlannedOnceInBatchesThatFitTheStaging() {
        System.setProperty("mmdit.uploadStagingBytes", Long.toString(STAGING));
        try (FluxTransformer t = FluxTransformer.load(demoTransformer(), DType.F32, null, DeviceSpec.META)) {
            WeightUpload.Report r = WeightUpload.lastReport();
            assertEquals(DeviceSpec.META, r.device());
            assertEquals(STAGING, r.stagingBytes());
            Set<String> keys = new HashSet<>();
            for (List<String> b : r.batches()) keys.addAll(b);
            assertEquals(r.tensors(), keys.size(), "each weight once");
            assertTrue(keys.contains("x_embedder.weight") && keys.contains("proj_out.weight"), keys.toString());
            boolean shared = false, alone = false;
            for (int i = 0; i < r.batches().size(); i++) {
                long bytes = r.batchBytes().get(i);
                if (bytes > STAGING) {
                    assertEquals(1, r.batches().get(i).size(), "a weight larger than the staging buffer is copied alone");
                    alone = true;
                } else {
                    shared |= r.batches().get(i).size() > 1;
                }
            }
            assertTrue(shared, "small weights share a batch");
            assertTrue(alone, "the demo has weights over 16 KB");
            assertEquals(r.bytes(), r.batchBytes().stream().mapToLong(Long::longValue).sum());
        } finally {
            System.clearProperty("mmdit.uploadStagingBytes");
        }
    }

    @Test
    void onTheCpuNothingIsPlanned() throws InterruptedException {
        AtomicReference<WeightUpload.Report> seen = new AtomicReference<>();
        AtomicReference<Throwable> failed = new AtomicReference<>();
        Thread t = new Thread(() -> { // a fresh thread: its last report is its own
            try (FluxTransformer m = FluxTransformer.load(demoTransformer(), DType.F32, null, DeviceSpec.CPU)) {
                seen.set(WeightUpload.lastReport());
            } catch (Throwable e) {
                failed.set(e);
            }
        });
        t.start();
        t.join();
        assertNull(failed.get());
        assertNull(seen.get(), "CPU weights stay views: no upload");
    }
}
