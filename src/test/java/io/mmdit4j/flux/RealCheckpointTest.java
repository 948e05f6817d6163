package io.mmdit4j.flux;

import io.mmdit4j.runtime.DType;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Checks that need the real FLUX.1 checkpoints: run with {@code MMDIT_MODELS=/path} holding any of
 * {@code FLUX.1-schnell/}, {@code FLUX.1-dev/} (diffusers folders) or {@code flux1-schnell.safetensors},
 * {@code flux1-dev.safetensors} (original BFL files). Skipped when none is present.
 */
class RealCheckpointTest {
    private static final Map<String, FluxConfig> EXPECTED = Map.of(
            "FLUX.1-schnell", FluxConfig.schnell(), "flux1-schnell.safetensors", FluxConfig.schnell(),
            "FLUX.1-dev", FluxConfig.dev(), "flux1-dev.safetensors", FluxConfig.dev());

    private static List<Path> present() {
        String root = System.getenv("MMDIT_MODELS");
        Assumptions.assumeTrue(root != null && !root.isBlank(), "MMDIT_MODELS is not set");
        List<Path> found = new ArrayList<>();
        for (String name : EXPECTED.keySet()) {
            Path p = Path.of(root).resolve(name);
            if (Files.exists(p)) found.add(p);
        }
        Assumptions.assumeFalse(found.isEmpty(), "no FLUX.1 checkpoint under " + root);
        return found;
    }

    @Test
    void configIsDetectedFromTheRealCheckpoints() {
        for (Path p : present()) {
            assertEquals(EXPECTED.get(p.getFileName().toString()), FluxTransformer.inspect(p, null), p.toString());
        }
    }

    @Test
    void bf16CheckpointsLoadWithoutCopyingTheWeights() throws IOException {
        for (Path p : present()) {
            long before = io.mmdit4j.runtime.ProcessMemory.rssMb();
            try (FluxTransformer model = FluxTransformer.load(p, DType.BF16)) {
                long grown = io.mmdit4j.runtime.ProcessMemory.rssMb() - before;
                // 12B bf16 parameters are ~24 GB: views of the mapping must not bring them into memory.
                assertTrue(grown < 2048, p + ": loading grew RSS by " + grown + " MB");
                assertEquals(57, model.config().totalBlocks());
            }
        }
    }

}
