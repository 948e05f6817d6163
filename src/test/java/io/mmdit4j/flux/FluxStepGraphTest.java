package io.mmdit4j.flux;

import io.mmdit4j.guidance.Direction;
import io.mmdit4j.pipeline.GenerationRequest;
import io.mmdit4j.pipeline.GenerationResult;
import io.mmdit4j.pipeline.InvalidRequestException;
import io.mmdit4j.pipeline.LoadOptions;
import io.mmdit4j.pipeline.Pipeline;
import io.mmdit4j.pipeline.Pipelines;
import io.mmdit4j.pipeline.UnsupportedOptionException;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Placement;
import io.mmdit4j.runtime.StepGraph;
import io.mmdit4j.runtime.Transfers;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.bytedeco.pytorch.global.torch.equal;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * FLUX's denoising step through {@link StepGraph} ({@code --cuda-graphs}) with the CPU stand-in for CUDA capture: the
 * replayed steps give the eager run's latents and images bit for bit on the tiny demo (so the step reads its per-step
 * inputs only through the static buffers and the guidance variant), one capture per request and guidance variant, and on
 * meta no host traffic in any step. CUDA graphs themselves have never run (no GPU here).
 */
class FluxStepGraphTest {
    private static GenerationRequest request(Direction guidance) {
        GenerationRequest.Builder b = GenerationRequest.builder().prompt("a wolf").prompt("a fox").size(64, 48).steps(4).seed(7).guidanceScale(3.5);
        if (guidance != null) b.guide(guidance);
        return b.build();
    }

    @Test
    void replayedStepsEqualTheEagerRunBitForBit() {
        StepGraph.EagerReplay capture = new StepGraph.EagerReplay();
        try (Pipeline eager = Pipelines.load("flux-tiny-demo", LoadOptions.defaults());
             Pipeline graphed = Pipelines.load("flux-tiny-demo", LoadOptions.builder().stepCapture(capture).build())) {
            for (Direction g : new Direction[] {null, Direction.preset("aesthetics").w(3).layers("1-")}) {
                long before = capture.captures();
                try (GenerationResult a = eager.generate(request(g)); GenerationResult b = graphed.generate(request(g))) {
                    assertTrue(equal(a.latents(), b.latents()), "final latents bit for bit (guidance " + g + ")");
                    assertTrue(equal(a.images(), b.images()), "images bit for bit");
                }
                assertEquals(before + 1, capture.captures(), "one capture for the request's 4 steps");
            }
            assertEquals(8, capture.replays(), "every step of both requests replayed");
        }
    }

    @Test
    void aGuidanceStepWindowIsAVariantOfItsOwn() {
        StepGraph.EagerReplay capture = new StepGraph.EagerReplay();
        Direction window = Direction.preset("aesthetics").w(3).layers("1-").steps("1-2");
        try (Pipeline eager = Pipelines.load("flux-tiny-demo", LoadOptions.defaults());
             Pipeline graphed = Pipelines.load("flux-tiny-demo", LoadOptions.builder().stepCapture(capture).build());
             GenerationResult a = eager.generate(request(window)); GenerationResult b = graphed.generate(request(window))) {
            assertTrue(equal(a.latents(), b.latents()), "steps 0 and 3 unguided, 1 and 2 guided: each replays its own graph");
            assertEquals(2, capture.captures(), "one graph without and one with guidance");
            assertEquals(4, capture.replays());
        }
    }

    @Test
    void onMetaEveryReplayedStepAsksForNoHostTraffic() {
        Placement.setEnabled(true);
        Transfers.setStrict(true);
        StepGraph.EagerReplay capture = new StepGraph.EagerReplay();
        try (Pipeline pipe = Pipelines.load("flux-tiny-demo", LoadOptions.builder().device(DeviceSpec.META).stepCapture(capture).build());
             GenerationResult r = pipe.generate(request(Direction.preset("aesthetics")))) {
            assertTrue(r.isMeta());
            List<Transfers.Counts> steps = Transfers.lastLoop();
            assertEquals(4, steps.size());
            for (int i = 0; i < steps.size(); i++) assertEquals(0, steps.get(i).total(), "step " + i + ": " + steps.get(i));
            assertEquals(1, capture.captures());
        } finally {
            Placement.setEnabled(false);
            Transfers.setStrict(false);
        }
    }

    @Test
    void cudaGraphsOffCudaAreRefusedBeforeLoading() {
        for (DeviceSpec d : List.of(DeviceSpec.CPU, DeviceSpec.META)) {
            InvalidRequestException e = assertThrows(InvalidRequestException.class,
                    () -> Pipelines.load("flux-tiny-demo", LoadOptions.builder().device(d).cudaGraphs(true).build()).close());
            assertTrue(e.getMessage().contains("--cuda-graphs needs a CUDA device"), e.getMessage());
        }
    }

    @Test
    void familiesWithoutAGraphSafeStepRefuseIt() {
        UnsupportedOptionException e = assertThrows(UnsupportedOptionException.class,
                () -> Pipelines.load("cosmos-tiny-demo", LoadOptions.builder().stepCapture(new StepGraph.EagerReplay()).build()).close());
        assertTrue(e.getMessage().contains("only FLUX"), e.getMessage());
    }

    @Test
    void replayedGenerationsLeaveNoMoreNativeObjectsThanEagerOnes() {
        GenerationRequest r = GenerationRequest.builder().prompt("a wolf").size(32, 32).steps(3).seed(7)
                .guide(Direction.preset("aesthetics").w(3).layers("1-").steps("1")).build(); // two graphs per request
        try (Pipeline eager = Pipelines.load("flux-tiny-demo", LoadOptions.defaults());
             Pipeline graphed = Pipelines.load("flux-tiny-demo", LoadOptions.builder().stepCapture(new StepGraph.EagerReplay()).build())) {
            long replayed = io.mmdit4j.pipeline.NativeObjects.perRun(() -> graphed.generate(r).close());
            long plain = io.mmdit4j.pipeline.NativeObjects.perRun(() -> eager.generate(r).close());
            assertTrue(replayed <= plain, "native objects left per generation (median): graphed " + replayed + ", eager " + plain
                    + " (static buffers, outputs and graphs must be closed with the request)");
        }
    }
}
