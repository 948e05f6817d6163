package io.mmdit4j.runtime;

import io.mmdit4j.flux.FluxConfig;
import io.mmdit4j.flux.FluxInputs;
import io.mmdit4j.flux.FluxTransformer;
import io.mmdit4j.guidance.ModulationGuidance;
import org.bytedeco.javacpp.PointerScope;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * A forward's activation peak is one block's working set, not the sum over blocks: each block frees its temporaries
 * when it ends. On this model (24 blocks, 2,368 tokens of width 256) holding
 * every block's temporaries until the forward returns (what one scope for the whole forward did) added ~450–580 MB in a
 * check with the block scopes disabled; with them the deep model needs no more than the shallow one.
 */
class ActivationMemoryTest {

    @Test
    void peakDoesNotGrowWithDepth() {
        // Both start from trimmed allocator caches; the deep model's forward needs about what the shallow one needs
        // (one block's working set), unless blocks keep their temporaries until the forward returns.
        long shallow = firstForwardPeakGrowth(new FluxConfig(64, 64, 1, 1, 64, 4, 64, 32, false, new int[] {16, 24, 24}, 1024));
        long deep = firstForwardPeakGrowth(new FluxConfig(64, 64, 12, 12, 64, 4, 64, 32, false, new int[] {16, 24, 24}, 1024));
        System.out.printf("first forward, 2368 tokens: peak RSS +%d MB with 2 blocks, then +%d MB with 24 blocks%n", shallow, deep);
        assertTrue(deep < shallow + 100, "the 24-block forward's peak grew by " + deep + " MB: block temporaries are kept past their block");
    }

    private static long firstForwardPeakGrowth(FluxConfig c) {
        try (FluxTransformer model = FluxTransformer.random(c, 0, DType.F32); PointerScope scope = new PointerScope()) {
            FluxInputs in = FluxInputs.random(c, 1, 48, 48, 64, 0, 1.0, 3.5);
            org.bytedeco.javacpp.Pointer.trimMemory(); // return freed memory that earlier tests left in malloc's caches
            assumeTrue(ProcessMemory.resetPeak(), "this kernel does not let a process reset its peak RSS");
            long before = ProcessMemory.rssMb();
            model.forward(in, ModulationGuidance.none(), 0).close();
            return ProcessMemory.peakRssMb() - before;
        }
    }
}
