package io.mmdit4j.pipeline;

import io.mmdit4j.guidance.Direction;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Placement;
import io.mmdit4j.runtime.Transfers;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.atomic.AtomicInteger;

import static org.bytedeco.pytorch.global.torch.equal;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The two stages of a generation ({@link Pipeline#denoise}, {@link Pipeline#decode}) and {@link DecodeOverlap}, which decodes
 * each request on a worker while the next one denoises: the same latents and images as {@link Pipeline#generate}, bit for
 * bit, and the latents' ownership (taken once by the decode, released by a close before it, kept by a failed run's cleanup).
 */
class DecodeOverlapTest {
    private static List<GenerationRequest> requests() {
        return List.of(
                GenerationRequest.builder().prompt("a wolf").size(64, 48).steps(3).seed(1).guidanceScale(3.5).build(),
                GenerationRequest.builder().prompt("a fox").prompt("a hare").size(48, 64).steps(2).seed(5)
                        .guide(Direction.preset("aesthetics").w(2).layers("1-")).build(),
                GenerationRequest.builder().prompt("a lighthouse").size(64, 64).steps(4).seed(9).build());
    }

    @Test
    void overlappedDecodesGiveTheSequentialImagesBitForBit() {
        try (Pipeline p = Pipelines.load("flux-tiny-demo", LoadOptions.defaults()); DecodeOverlap overlap = new DecodeOverlap(p)) {
            AtomicInteger steps = new AtomicInteger();
            List<GenerationResult> overlapped = overlap.generateAll(requests(), step -> steps.incrementAndGet() > 0);
            try {
                assertEquals(3 + 2 + 4, steps.get(), "the listener saw every step of every request");
                for (int i = 0; i < requests().size(); i++) {
                    try (GenerationResult alone = p.generate(requests().get(i))) {
                        assertTrue(equal(alone.images(), overlapped.get(i).images()), "request " + i + ": images bit for bit");
                        assertTrue(equal(alone.latents(), overlapped.get(i).latents()), "request " + i + ": latents bit for bit");
                        assertEquals(alone.settings().toJson(), overlapped.get(i).settings().toJson());
                    }
                }
            } finally {
                overlapped.forEach(GenerationResult::close);
            }
        }
    }

    @Test
    void theDecodeTakesTheLatentsOnceAndACloseBeforeItReleasesThem() {
        try (Pipeline p = Pipelines.load("flux-tiny-demo", LoadOptions.defaults())) {
            GenerationSettings s = p.resolve(requests().get(0));
            try (Denoised d = p.denoise(s, null)) {
                assertFalse(d.consumed());
                try (GenerationResult r = p.decode(d); GenerationResult whole = p.generate(requests().get(0))) {
                    assertTrue(d.consumed());
                    assertNull(d.latents(), "the result owns the latents now");
                    assertTrue(equal(whole.images(), r.images()));
                }
                IllegalStateException again = assertThrows(IllegalStateException.class, () -> p.decode(d));
                assertTrue(again.getMessage().contains("decoded already"), again.getMessage());
            }
            Denoised closed = p.denoise(s, null);
            org.bytedeco.pytorch.Tensor latents = closed.latents();
            closed.close();
            assertTrue(latents.isNull(), "closing before the decode released the latents");
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> p.decode(closed));
            assertTrue(e.getMessage().contains("closed before decoding"), e.getMessage());
        }
    }

    @Test
    void aCancelledRequestLeavesNothingBehindAndThePipelineWorks() {
        try (Pipeline p = Pipelines.load("flux-tiny-demo", LoadOptions.defaults()); DecodeOverlap overlap = new DecodeOverlap(p)) {
            AtomicInteger steps = new AtomicInteger();
            // request 0 denoises and goes to the decoder; request 1 is cancelled at its first step: request 0's result is closed
            assertThrows(CancellationException.class, () -> overlap.generateAll(requests(), step -> steps.incrementAndGet() <= 3));
            List<GenerationResult> after = overlap.generateAll(requests().subList(0, 1), null);
            try (GenerationResult r = after.get(0); GenerationResult alone = p.generate(requests().get(0))) {
                assertTrue(equal(alone.images(), r.images()), "the pipeline and its decode worker go on after a failure");
            }
        }
    }

    @Test
    void onMetaTheStagesAskForNoHostTrafficInTheSteps() {
        Placement.setEnabled(true);
        Transfers.setStrict(true);
        try (Pipeline p = Pipelines.load("flux-tiny-demo", LoadOptions.builder().device(DeviceSpec.META).build());
             DecodeOverlap overlap = new DecodeOverlap(p)) {
            List<GenerationResult> results = overlap.generateAll(requests().subList(0, 2), null);
            try {
                assertTrue(results.get(1).isMeta());
                for (Transfers.Counts c : Transfers.lastLoop()) assertEquals(0, c.total(), c.toString());
            } finally {
                results.forEach(GenerationResult::close);
            }
        } finally {
            Placement.setEnabled(false);
            Transfers.setStrict(false);
        }
    }

    @Test
    void overlappedAndCancelledRunsLeaveNoMoreNativeObjectsThanGenerate() {
        try (Pipeline p = Pipelines.load("flux-tiny-demo", LoadOptions.defaults()); DecodeOverlap overlap = new DecodeOverlap(p)) {
            long overlapped = NativeObjects.perRun(() -> {
                overlap.generateAll(requests(), null).forEach(GenerationResult::close);
                AtomicInteger steps = new AtomicInteger(); // request 0's 3 steps, then request 1 is cancelled at its first
                assertThrows(CancellationException.class, () -> overlap.generateAll(requests(), step -> steps.incrementAndGet() <= 3));
            });
            long sequential = NativeObjects.perRun(() -> {
                for (GenerationRequest r : requests()) p.generate(r).close();
                p.generate(requests().get(0)).close();
                assertThrows(CancellationException.class, () -> p.generate(requests().get(1), step -> false));
            });
            assertTrue(overlapped <= sequential, "native objects left per round (median): overlapped " + overlapped + ", the same requests through generate "
                    + sequential + " (every result and latents the overlap made must be closed)");
        }
    }
}
