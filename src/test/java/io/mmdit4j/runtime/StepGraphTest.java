package io.mmdit4j.runtime;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

import static org.bytedeco.pytorch.global.torch.equal;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link StepGraph}'s bookkeeping with the CPU stand-in for CUDA capture ({@link StepGraph.EagerReplay}): static buffers once
 * per (shapes, dtypes, device, variant) key, inputs copied into them before every replay, one static output overwritten in
 * place, a new key captured anew (the documented choice over an eager fallback), at most {@link StepGraph#MAX_GRAPHS} kept.
 */
class StepGraphTest {
    /** {@code x·2 + t} over [B, N] latents and [B, 1] timesteps; counts its runs. */
    private static StepGraph.Step step(AtomicInteger runs) {
        return in -> {
            runs.incrementAndGet();
            try (PointerScope scope = new PointerScope(); Scalar two = new Scalar(2.0)) {
                return Tensors.keep(in.get(0).mul(two).add(in.get(1)));
            }
        };
    }

    private static Tensor eager(Tensor x, Tensor t) {
        try (PointerScope scope = new PointerScope(); Scalar two = new Scalar(2.0)) {
            return Tensors.keep(x.mul(two).add(t));
        }
    }

    @Test
    void buffersOncePerKeyInputsCopiedEveryReplayOneStaticOutput() {
        StepGraph.EagerReplay capture = new StepGraph.EagerReplay();
        AtomicInteger runs = new AtomicInteger();
        try (StepGraph graph = new StepGraph(capture); PointerScope scope = new PointerScope()) {
            long outputAddress = -1;
            for (int i = 0; i < 4; i++) {
                Tensor x = Tensors.fromFloats(new float[] {i, i + 1, i + 2, i + 3, i + 4, i + 5}, 2, 3);
                Tensor t = Tensors.fromFloats(new float[] {0.5f * i, -i}, 2, 1);
                try (Tensor out = graph.run("", List.of(x, t), step(runs)); Tensor expected = eager(x, t)) {
                    assertTrue(equal(out, expected), "replay " + i + " equals the eager step bit for bit: the new inputs reached it");
                    if (outputAddress < 0) outputAddress = out.data_ptr().address();
                    assertEquals(outputAddress, out.data_ptr().address(), "the static output is the same memory every step");
                }
            }
            assertEquals(1, graph.captures());
            assertEquals(1, capture.captures());
            assertEquals(2, graph.bufferAllocations(), "two inputs, their static buffers allocated once");
            assertEquals(4, graph.replays());
            assertEquals(4, capture.replays());
            assertEquals(5, runs.get(), "the capture's own run, then one per replay");
        }
    }

    @Test
    void aNewShapeOrVariantCapturesAnewAndOldGraphsAreKept() {
        AtomicInteger runs = new AtomicInteger();
        try (StepGraph graph = new StepGraph(new StepGraph.EagerReplay()); PointerScope scope = new PointerScope()) {
            Tensor x2 = Tensors.fromFloats(new float[] {1, 2, 3, 4}, 2, 2), t2 = Tensors.fromFloats(new float[] {1, 2}, 2, 1);
            Tensor x1 = Tensors.fromFloats(new float[] {5, 6}, 1, 2), t1 = Tensors.fromFloats(new float[] {3}, 1, 1);
            graph.run("", List.of(x2, t2), step(runs)).close();
            graph.run("", List.of(x1, t1), step(runs)).close();                       // another batch: captured anew
            assertEquals(2, graph.captures());
            assertEquals(4, graph.bufferAllocations());
            try (Tensor again = graph.run("", List.of(x2, t2), step(runs)); Tensor expected = eager(x2, t2)) { // back: no capture
                assertTrue(equal(again, expected));
            }
            assertEquals(2, graph.captures());
            graph.run("guided", List.of(x2, t2), step(runs)).close();                 // another variant (guidance window)
            assertEquals(3, graph.captures());
            graph.run("", List.of(x2.to(org.bytedeco.pytorch.global.torch.ScalarType.Double), t2), step(runs)).close(); // dtype
            graph.run("", List.of(Tensors.fromFloats(new float[] {1, 2, 3}, 3, 1), Tensors.fromFloats(new float[] {1, 2, 3}, 3, 1)),
                    step(runs)).close();
            assertEquals(5, graph.captures());
            assertEquals(StepGraph.MAX_GRAPHS, graph.graphs(), "the least recently used graph was released");
        }
    }

    @Test
    void inputsOnTwoDevicesAreRefused() {
        try (StepGraph graph = new StepGraph(new StepGraph.EagerReplay()); PointerScope scope = new PointerScope()) {
            Tensor x = Tensors.fromFloats(new float[] {1, 2}, 1, 2);
            Tensor t = Transfers.to(Tensors.fromFloats(new float[] {1}, 1, 1), DeviceSpec.META);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> graph.run("", List.of(x, t), in -> null));
            assertTrue(e.getMessage().contains("one device"), e.getMessage());
            assertEquals(0, graph.captures());
        }
    }

    @Test
    void theDefaultBuildHasNoCudaCapture() {
        IllegalStateException e = assertThrows(IllegalStateException.class, StepGraph::cudaCapture);
        assertTrue(e.getMessage().contains("mvn -Pcuda"), e.getMessage());
    }
}
