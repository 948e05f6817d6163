package io.mmdit4j.pipeline;

import io.mmdit4j.GoldenData;
import io.mmdit4j.guidance.CfgRows;
import io.mmdit4j.guidance.Direction;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.sampling.StepListener;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Row stepping (continuous batching): requests that join a running batch at different steps, with different seeds, prompts,
 * step counts, embedded guidance and modulation-guidance plans, make the images they make alone (bit for bit when a request
 * is stepped alone; within the documented ±1 of 8-bit batch rounding when it shares forwards), in FLUX (a timestep and
 * guidance value per row) and SD3 (a timestep per row, CFG pairs and plain rows in one forward).
 */
class RowStepperTest {
    private static final Path FLUX = GoldenData.root().resolve("flux_pipeline/models/flux-tiny-dev");
    private static final Path SD3 = GoldenData.root().resolve("sd3_pipeline/models/sd35-tiny-large");

    private static GenerationRequest.Builder flux(String prompt, int steps, long seed) {
        return GenerationRequest.builder().prompt(prompt).size(32, 32).steps(steps).seed(seed).maxSequenceLength(16);
    }

    @Test
    void aRequestSteppedAloneIsBitIdenticalToGenerate() {
        try (Pipeline p = Pipelines.load(FLUX.toString(), LoadOptions.defaults()); RowStepper rows = p.rowStepper()) {
            assertTrue(rows.supported());
            GenerationSettings s = p.resolve(flux("a red fox", 3, 5).guidanceScale(4.5)
                    .guide(Direction.preset("aesthetics").w(3).layers("1-").steps("1-")).build());
            try (GenerationResult alone = p.generate(s, StepListener.NONE, null); GenerationResult stepped = runAlone(rows, s)) {
                assertArrayEquals(Tensors.toFloats(alone.images()), Tensors.toFloats(stepped.images()));
                assertArrayEquals(Tensors.toFloats(alone.latents()), Tensors.toFloats(stepped.latents()));
                assertEquals(s, stepped.settings());
                assertEquals(3, stepped.timings().steps().length);
            }
        }
        try (Pipeline p = Pipelines.load(SD3.toString(), LoadOptions.defaults()); RowStepper rows = p.rowStepper()) {
            GenerationSettings s = p.resolve(GenerationRequest.builder().prompt("a lighthouse").size(32, 32).steps(3).seed(2)
                    .cfg(3.5, List.of("blurry")).guide(Direction.preset("aesthetics").w(2).layers("1-").rows(CfgRows.COND_NEG)).build());
            try (GenerationResult alone = p.generate(s, StepListener.NONE, null); GenerationResult stepped = runAlone(rows, s)) {
                assertArrayEquals(Tensors.toFloats(alone.images()), Tensors.toFloats(stepped.images()));
                assertArrayEquals(Tensors.toFloats(alone.latents()), Tensors.toFloats(stepped.latents()));
            }
        }
    }

    private static GenerationResult runAlone(RowStepper stepper, GenerationSettings s) {
        RowStepper.Rows r = stepper.start(s);
        while (!r.done()) stepper.step(List.of(r));
        return stepper.finish(r);
    }

    @Test
    void fluxRequestsJoiningAndLeavingARunningBatchMakeTheirOwnImages() {
        try (Pipeline p = Pipelines.load(FLUX.toString(), LoadOptions.defaults()); RowStepper stepper = p.rowStepper()) {
            List<GenerationSettings> requests = List.of(
                    p.resolve(flux("a red fox", 4, 1).guide(Direction.preset("aesthetics").w(3).layers("1-").steps("0-1")).build()),
                    p.resolve(flux("a lighthouse at dusk", 6, 9).guidanceScale(5).build()),
                    p.resolve(flux("a red fox", 3, 3).guidanceScale(2).imagesPerPrompt(2)
                            .guide(Direction.of("sharp", "blurry").w(-2).layers("0,2,4").rowWeights(1, 0)).build()),
                    p.resolve(flux("a cat", 5, 7).guide(Direction.preset("complexity").w(4).layers("2-")).build()));
            // request k joins after step k of the batch; each leaves when its own steps are done
            Map<Integer, GenerationResult> batched = runStaggered(stepper, requests, new int[] {0, 1, 1, 3});
            try {
                for (int k = 0; k < requests.size(); k++) {
                    try (GenerationResult alone = p.generate(requests.get(k), StepListener.NONE, null)) {
                        assertSameImages("request " + k, alone, batched.get(k));
                    }
                }
                assertEquals(3, stepper.encodingCacheMisses(), "fox, lighthouse and cat encoded once each");
                assertEquals(2, stepper.encodingCacheHits(), "both images of the second 'a red fox' request reuse the first one's encoding");
            } finally {
                batched.values().forEach(GenerationResult::close);
            }
        }
    }

    @Test
    void sd3RequestsWithAndWithoutCfgShareForwardsAtDifferentSteps() {
        try (Pipeline p = Pipelines.load(SD3.toString(), LoadOptions.defaults()); RowStepper stepper = p.rowStepper()) {
            GenerationRequest.Builder base = GenerationRequest.builder().size(32, 32);
            List<GenerationSettings> requests = List.of(
                    p.resolve(base.prompt("a lighthouse").steps(4).seed(2).cfg(3.5, List.of("blurry"))
                            .guide(Direction.preset("aesthetics").w(2).layers("1-").rows(CfgRows.COND)).build()),
                    p.resolve(GenerationRequest.builder().size(32, 32).prompt("a red fox").steps(3).seed(4).build()),
                    p.resolve(GenerationRequest.builder().size(32, 32).prompt("a cat").steps(5).seed(6).cfg(5)
                            .guide(Direction.preset("complexity").w(1).steps("2-")).build()));
            Map<Integer, GenerationResult> batched = runStaggered(stepper, requests, new int[] {0, 2, 1});
            try {
                for (int k = 0; k < requests.size(); k++) {
                    try (GenerationResult alone = p.generate(requests.get(k), StepListener.NONE, null)) {
                        assertSameImages("request " + k, alone, batched.get(k));
                    }
                }
            } finally {
                batched.values().forEach(GenerationResult::close);
            }
        }
    }

    /** Starts request k after {@code joinAfter[k]} batch steps, steps everything running together, finishes each when done. */
    private static Map<Integer, GenerationResult> runStaggered(RowStepper stepper, List<GenerationSettings> requests, int[] joinAfter) {
        Map<Integer, GenerationResult> out = new LinkedHashMap<>();
        Map<Integer, RowStepper.Rows> running = new LinkedHashMap<>();
        int batchStep = 0;
        List<Integer> sizes = new ArrayList<>();
        while (out.size() < requests.size()) {
            for (int k = 0; k < requests.size(); k++) {
                if (joinAfter[k] == batchStep && !running.containsKey(k) && !out.containsKey(k)) running.put(k, stepper.start(requests.get(k)));
            }
            stepper.step(new ArrayList<>(running.values()));
            sizes.add(running.size());
            batchStep++;
            for (var e : new ArrayList<>(running.entrySet())) {
                if (e.getValue().done()) {
                    out.put(e.getKey(), stepper.finish(e.getValue()));
                    running.remove(e.getKey());
                    assertTrue(e.getValue().isClosed());
                }
            }
        }
        assertTrue(sizes.stream().anyMatch(n -> n > 1), "rows shared forwards: " + sizes);
        return out;
    }

    /** The same settings and images up to ±1 of 8 bits (batch rounding), almost all pixels exactly equal. */
    private static void assertSameImages(String what, GenerationResult alone, GenerationResult batched) {
        assertEquals(alone.settings(), batched.settings(), what);
        float[] a = Tensors.toFloats(alone.images()), b = Tensors.toFloats(batched.images());
        assertEquals(a.length, b.length);
        int differ = 0;
        for (int i = 0; i < a.length; i++) {
            long x = Math.round(Math.min(1, Math.max(0, a[i])) * 255), y = Math.round(Math.min(1, Math.max(0, b[i])) * 255);
            assertTrue(Math.abs(x - y) <= 1, what + ": value " + i + " is " + x + " alone and " + y + " in the batch");
            if (x != y) differ++;
        }
        assertTrue(differ <= a.length / 100, what + ": " + differ + " of " + a.length + " 8-bit values differ");
        float[] la = Tensors.toFloats(alone.latents()), lb = Tensors.toFloats(batched.latents());
        for (int i = 0; i < la.length; i++) assertEquals(la[i], lb[i], 1e-4 + 1e-4 * Math.abs(la[i]), what + ": latent " + i);
    }

    @Test
    void requestsFinishingTogetherAreDecodedInOneBatch() {
        try (Pipeline p = Pipelines.load(FLUX.toString(), LoadOptions.defaults()); RowStepper stepper = p.rowStepper()) {
            GenerationSettings a = p.resolve(flux("a red fox", 2, 1).build());
            GenerationSettings b = p.resolve(flux("a cat", 2, 2).imagesPerPrompt(2).guide(Direction.preset("aesthetics").w(2)).build());
            RowStepper.Rows ra = stepper.start(a), rb = stepper.start(b);
            stepper.step(List.of(ra, rb));
            stepper.step(List.of(ra, rb));
            List<GenerationResult> both = stepper.finish(List.of(ra, rb));
            try (GenerationResult alone0 = p.generate(a, StepListener.NONE, null); GenerationResult alone1 = p.generate(b, StepListener.NONE, null)) {
                assertEquals(1, both.get(0).count());
                assertEquals(2, both.get(1).count());
                assertSameImages("a", alone0, both.get(0));
                assertSameImages("b", alone1, both.get(1));
                assertTrue(ra.isClosed() && rb.isClosed());
            } finally {
                both.forEach(GenerationResult::close);
            }
            RowStepper.Rows small = stepper.start(p.resolve(flux("a cat", 1, 2).build()));
            RowStepper.Rows large = stepper.start(p.resolve(flux("a cat", 1, 2).size(48, 32).build()));
            stepper.step(List.of(small));
            stepper.step(List.of(large));
            assertThrows(IllegalArgumentException.class, () -> stepper.finish(List.of(small, large)), "other sizes decode apart");
        }
    }

    @Test
    void cancelledRowsLeaveTheBatchAndMisuseIsRefused() {
        try (Pipeline p = Pipelines.load(FLUX.toString(), LoadOptions.defaults()); RowStepper stepper = p.rowStepper()) {
            RowStepper.Rows a = stepper.start(p.resolve(flux("a red fox", 3, 1).build()));
            RowStepper.Rows b = stepper.start(p.resolve(flux("a cat", 3, 2).build()));
            RowStepper.Rows other = stepper.start(p.resolve(flux("a cat", 3, 2).size(48, 32).build()));
            assertFalse(a.batchKey().equals(other.batchKey()), "another size is another batch");
            assertThrows(IllegalArgumentException.class, () -> stepper.step(List.of(a, other)));
            stepper.step(List.of(a, b));
            b.close(); // cancelled between steps
            assertThrows(IllegalStateException.class, () -> stepper.step(List.of(a, b)));
            assertThrows(IllegalStateException.class, () -> stepper.finish(a), "not done");
            stepper.step(List.of(a));
            stepper.step(List.of(a));
            assertThrows(IllegalStateException.class, () -> stepper.step(List.of(a)), "done");
            assertTrue(stepper.preview(a, 0).getWidth() == 4, "a 4x4 latent preview of a 32x32 image");
            try (GenerationResult r = stepper.finish(a)) {
                assertEquals(1, r.count());
            }
            // `other` is still open: closing the stepper releases it
        }
    }

    @Test
    void optionsTheRowForwardsDoNotDoAreRefusedNotIgnored(@org.junit.jupiter.api.io.TempDir Path tmp) {
        Path picture = tmp.resolve("init.png");
        io.mmdit4j.image.PngImages.write(picture, new java.awt.image.BufferedImage(32, 32, java.awt.image.BufferedImage.TYPE_INT_RGB), Map.of());
        try (Pipeline p = Pipelines.load(FLUX.toString(), LoadOptions.defaults()); RowStepper stepper = p.rowStepper()) {
            GenerationSettings i2i = p.resolve(flux("a red fox", 3, 1).option(InitImage.of(picture, 0.6)).build());
            UnsupportedOptionException e = assertThrows(UnsupportedOptionException.class, () -> stepper.start(i2i));
            assertTrue(e.getMessage().contains("row stepping"), e.getMessage());
            stepper.start(p.resolve(flux("a red fox", 3, 1).build())).close(); // the same request without it starts
        }
    }

    /**
     * FLUX's true CFG (the shapes demo's default) is row stepping's own: a part brings {@code [x; x]} against its negative and
     * positive text, combined with its own scale; parts with and without it, and with different negatives, share forwards.
     */
    @Test
    void fluxTrueCfgRequestsShareForwardsWithPlainOnes() {
        try (Pipeline p = Pipelines.load(FLUX.toString(), LoadOptions.defaults()); RowStepper stepper = p.rowStepper()) {
            List<GenerationSettings> requests = List.of(
                    p.resolve(flux("a red fox", 4, 1).option(new TrueCfg(3.0, List.of("blurry"))).build()),
                    p.resolve(flux("a red fox", 3, 2).build()),
                    p.resolve(flux("a red fox", 5, 3).option(new TrueCfg(2.0, List.of("")))
                            .guide(Direction.preset("aesthetics").w(2).layers("1-").rows(CfgRows.COND)).build()),
                    p.resolve(flux("a cat", 4, 4).imagesPerPrompt(2).option(new TrueCfg(4.0, List.of("blurry"))).build()));
            Map<Integer, GenerationResult> batched = runStaggered(stepper, requests, new int[] {0, 1, 1, 2});
            try {
                for (int k = 0; k < requests.size(); k++) {
                    try (GenerationResult alone = p.generate(requests.get(k), StepListener.NONE, null)) {
                        assertSameImages("request " + k, alone, batched.get(k));
                    }
                }
                assertEquals(4, stepper.encodingCacheMisses(), "fox+blurry, fox, fox+'', cat+blurry: the negative is part of the key");
                assertEquals(1, stepper.encodingCacheHits(), "the second image of the cat request reuses the first one's encoding");
            } finally {
                batched.values().forEach(GenerationResult::close);
            }
        }
    }

    @Test
    void familiesWithoutRowSteppingSaySo() {
        try (Pipeline p = Pipelines.load("cosmos-tiny-demo", LoadOptions.defaults()); RowStepper stepper = p.rowStepper()) {
            assertFalse(stepper.supported());
            assertThrows(UnsupportedOptionException.class, () -> stepper.start(p.resolve(GenerationRequest.builder().prompt("a wolf").build())));
        }
    }

    /** HiDream-I1 (samplers with per-step noise or a multistep history) is served whole too. */
    @Test
    void hidreamRunsRequestsWhole(@org.junit.jupiter.api.io.TempDir java.nio.file.Path home) throws Exception {
        LoadOptions o = LoadOptions.builder().registry(io.mmdit4j.hidream.HiDreamDemo.registry(home)).build();
        try (Pipeline p = Pipelines.load(io.mmdit4j.hidream.HiDreamDemo.NAME, o); RowStepper stepper = p.rowStepper()) {
            assertFalse(stepper.supported());
            assertThrows(UnsupportedOptionException.class, () -> stepper.start(p.resolve(GenerationRequest.builder().prompt("a wolf").build())));
        }
    }
}
