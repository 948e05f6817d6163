package io.mmdit4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.mmdit4j.GoldenData;
import io.mmdit4j.flux.FluxTransformer;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code mmdit bench}: the JSON it prints is complete and self-consistent (the numbers themselves are measured in
 * benchmarks/, never asserted here).
 */
class BenchCommandTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void forwardBenchReportsFloorAndWhereTheTimeGoes() throws IOException {
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("bench", "--model",
                GoldenData.fluxModel("schnell").resolve("transformer").toString(), "--latent", "8x8", "--text", "8",
                "--warmup", "1", "--reps", "3", "--floor-reps", "1");
        assertEquals(0, r.exit(), r.out() + r.err());
        JsonNode j = JSON.readTree(r.out().lines().filter(l -> l.startsWith("{")).findFirst().orElseThrow());
        for (String k : new String[] {"plain_ms_median", "guided_ms_median", "guided_over_plain", "gflop", "gemm_floor_ms",
                "forward_over_floor", "floor_linear_ms", "floor_attention_ms", "in_linear_ms", "in_attention_ms", "in_other_ms", "peak_rss_mb", "memory_profile", "clock"}) {
            assertTrue(j.has(k), "missing " + k + " in " + j);
        }
        assertEquals(j.get("floor_linear_ms").asDouble() + j.get("floor_attention_ms").asDouble(), j.get("gemm_floor_ms").asDouble(), 0.02);
        assertEquals("wall", j.get("clock").asText(), "a CPU model is timed on the host's clock (CUDA: events)");
        assertTrue(j.get("in_linear_ms").asDouble() > 0 && j.get("in_attention_ms").asDouble() > 0, j.toString());
        assertTrue(j.get("in_linear_ms").asDouble() + j.get("in_attention_ms").asDouble() <= j.get("profiled_forward_ms").asDouble() + 0.01,
                "the timed parts fit inside the forward: " + j);
    }

    @Test
    void forwardSingleReportsPeakRssAgainstTheWeightFiles() throws IOException {
        Path transformer = GoldenData.fluxModel("schnell").resolve("transformer");
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("forward", "--model", transformer.toString(),
                "--latent", "8x8", "--text", "8", "--batch", "1", "--single");
        assertEquals(0, r.exit(), r.out() + r.err());
        long bytes;
        try (var files = Files.list(transformer)) {
            bytes = files.filter(f -> f.toString().endsWith(".safetensors")).mapToLong(f -> f.toFile().length()).sum();
        }
        String peak = r.out().lines().filter(l -> l.startsWith("peak RSS: ")).findFirst().orElseThrow(() -> new AssertionError(r.out()));
        assertTrue(peak.contains(String.format(java.util.Locale.ROOT, "the %.0f MB of weight files", bytes / 1048576.0)), peak);
        assertTrue(r.out().contains("one forward: ") && r.out().contains("memory profile: "), r.out());
    }

    @Test
    void saveRandomWritesALoadableTransformerFolder(@TempDir Path tmp) {
        Path config = GoldenData.fluxModel("schnell").resolve("transformer/config.json");
        Path out = tmp.resolve("unit/transformer");
        CheckGoldenCommandTest.Run w = CheckGoldenCommandTest.run("forward", "--random", config.toString(), "--save-random", out.toString());
        assertEquals(0, w.exit(), w.out() + w.err());
        assertTrue(Files.isRegularFile(out.resolve("config.json")) && Files.isRegularFile(out.resolve("diffusion_pytorch_model.safetensors")));
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("forward", "--model", tmp.resolve("unit").toString(),
                "--latent", "8x8", "--text", "8", "--single");
        assertEquals(0, r.exit(), r.out() + r.err());
        assertTrue(r.out().contains("weight files in " + out), r.out());

        CheckGoldenCommandTest.Run bad = CheckGoldenCommandTest.run("forward", "--save-random", tmp.resolve("x").toString());
        assertEquals(2, bad.exit());
        assertTrue(bad.err().contains("--save-random needs --random"), bad.err());
        assertTrue(Files.notExists(tmp.resolve("x")), "nothing written on bad input");
    }

    @Test
    void pipelineBenchTimesEveryPhase(@TempDir Path tmp) throws IOException {
        Path folder = GoldenData.root().resolve("flux_pipeline/models/flux-tiny-dev");
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("bench", "--pipeline", "--model", folder.toString(),
                "--size", "32x32", "--steps", "2", "--text", "16", "--warmup", "0", "--reps", "2");
        assertEquals(0, r.exit(), r.out() + r.err());
        JsonNode j = JSON.readTree(r.out().lines().filter(l -> l.startsWith("{")).findFirst().orElseThrow());
        assertEquals(2, j.get("steps").asInt());
        for (String kind : new String[] {"plain", "guided"}) {
            for (String k : new String[] {"_text_encode_ms", "_step_ms_median", "_decode_ms", "_total_ms"}) {
                assertTrue(j.get(kind + k).asDouble() > 0, kind + k + " in " + j);
            }
            assertTrue(j.get(kind + "_step_ms_min").asDouble() <= j.get(kind + "_step_ms_max").asDouble());
        }
        assertTrue(Files.list(tmp).findAny().isEmpty(), "bench writes no files");
    }

    @Test
    void pipelineBenchRejectsABadSizeBeforeLoading() {
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("bench", "--pipeline", "--model", "/no/such/folder", "--size", "30x30");
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("multiples of 16") && r.err().contains("30x30"), r.err());
    }

    @Test
    void blockApiChecksItsInputsBeforeNativeCalls() {
        try (FluxTransformer t = FluxTransformer.load(GoldenData.fluxModel("schnell").resolve("transformer"),
                DType.F32)) {
            long d = t.config().innerDim();
            Tensor ok = Tensors.fromFloats(new float[(int) (4 * d)], 1, 4, d);
            Tensor wrong = Tensors.fromFloats(new float[12], 1, 4, 3);
            Tensor cond = Tensors.fromFloats(new float[(int) d], 1, d);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> t.doubleBlock(0, ok, wrong, cond, null));
            assertTrue(e.getMessage().contains("ctx has shape [1, 4, 3]"), e.getMessage());
            assertThrows(IndexOutOfBoundsException.class, () -> t.singleBlock(99, ok, cond, null));
            ok.close();
            wrong.close();
            cond.close();
        }
    }

    @Test
    void pipelineBenchNeedsAModel() {
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("bench", "--pipeline", "--random", "benchmarks/configs/flux-unit-1x1.json");
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("--pipeline needs --model"), r.err());
    }
}
