package io.mmdit4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.mmdit4j.runtime.Placement;
import io.mmdit4j.runtime.Transfers;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The two halves of {@code benchmarks/gpu-check.sh --dry-run} in process (CI also runs the script itself, {@code .ci/run}):
 * the real-size FLUX.1-schnell time model with the host's time per step on meta, and a generate on meta with placement
 * checks and strict sync that writes nothing and reports 0 host↔device copies and reads in its steps.
 */
class GpuCheckDryRunTest {
    @AfterEach
    void reset() { // the flags are process-wide switches the command sets
        Placement.setEnabled(false);
        Transfers.setStrict(false);
    }

    @Test
    void theTimeModelIsOneJsonLineWithTheAnchors() throws IOException {
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("inspect", "--config", "flux1-schnell", "--size", "1024x1024", "--gpu", "h100",
                "--json", "--host-reps", "2");
        assertEquals(0, r.exit(), r.out() + r.err());
        assertEquals(1, r.out().strip().lines().count(), r.out());
        JsonNode j = new ObjectMapper().readTree(r.out());
        assertEquals(56.201, j.get("gemm_tflop").asDouble(), 0.001, "the FLOPs of the meta dry run");
        assertEquals(13.266, j.get("attention_tflop").asDouble(), 0.001);
        assertTrue(j.get("host_ms_per_step_meta").asDouble() > 0);
        double eager = j.get("modelled_eager_ms").asDouble(), graphs = j.get("modelled_cudnn_graphs_ms").asDouble();
        assertTrue(graphs < eager && eager < j.get("anchor_xdit_eager_ms").asDouble(), r.out());
        assertEquals(6710.0 / 28, j.get("anchor_xdit_eager_ms").asDouble(), 0.1);
    }

    @Test
    void aMetaGenerateWritesNothingAndMovesNothingInItsSteps(@TempDir Path tmp) throws IOException {
        Path out = tmp.resolve("out");
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("generate", "--model", "flux-tiny-demo", "--device", "meta", "--check-placement",
                "--strict-sync", "--prompt", "a lighthouse", "--steps", "4", "--seed", "1", "--out", out.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        assertTrue(r.err().contains("meta: shapes only, nothing written: images [1, 3, 256, 256]"), r.err());
        assertTrue(r.err().contains("4 steps, host<->device copies in the steps 0, host reads 0"), r.err());
        assertFalse(Files.exists(out) && Files.list(out).findAny().isPresent(), "no file from a meta run");
    }

    /** --preview on meta: the steps' previews are shapes only, so nothing is drawn, and the run still finishes (FLUX and a video family). */
    @Test
    void aMetaGenerateWithPreviewsDrawsNoPreview(@TempDir Path tmp) {
        for (String model : new String[] {"flux-tiny-demo", "hunyuan-video-tiny-demo"}) {
            Path preview = tmp.resolve(model + "-preview.png");
            CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("generate", "--model", model, "--device", "meta", "--preview", preview.toString(),
                    "--prompt", "a lighthouse", "--steps", "2", "--out", tmp.resolve(model).toString());
            assertEquals(0, r.exit(), r.out() + r.err());
            assertTrue(r.err().contains("meta: shapes only, nothing written"), r.err());
            assertFalse(Files.exists(preview), "no preview from a meta run");
        }
    }

    @Test
    void cudaGraphsOnTheCpuAreAClearErrorNotIgnored(@TempDir Path tmp) throws IOException {
        Path out = tmp.resolve("x.png");
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("generate", "--model", "flux-tiny-demo", "--cuda-graphs",
                "--prompt", "a lighthouse", "--steps", "1", "--out", out.toString());
        assertEquals(2, r.exit(), r.out() + r.err());
        assertTrue(r.err().contains("--cuda-graphs needs a CUDA device (this model would run on cpu)"), r.err());
        assertFalse(Files.exists(out));
    }
}
