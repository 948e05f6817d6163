package io.mmdit4j.nn;

import io.mmdit4j.io.RandomWeights;
import io.mmdit4j.io.StateDict;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

import static org.bytedeco.pytorch.global.torch.equal;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The MoE feed-forward: grouped GEMMs over each expert's routed tokens give what running every expert on every token
 * (weighted, 0 where not routed) gives, a batch row does not depend on the others, and the grouped form is faster.
 */
class MoeFeedForwardTest {
    static MoeFeedForward random(long dim, long hidden, long shared, int experts, int topK, long seed) {
        Map<String, long[]> shapes = new LinkedHashMap<>();
        shapes.put("ff.gate.weight", new long[] {experts, dim});
        for (int e = 0; e < experts; e++) swiglu(shapes, "ff.experts." + e, dim, hidden);
        swiglu(shapes, "ff.shared_experts", dim, shared);
        Map<String, Tensor> w = RandomWeights.generate(shapes, seed, DType.F32);
        try {
            StateDict sd = RandomWeights.asStateDict("moe", w);
            return MoeFeedForward.load(sd, "ff", dim, hidden, shared, experts, topK, DType.F32);
        } finally {
            Tensors.closeAll(w.values());
        }
    }

    private static void swiglu(Map<String, long[]> shapes, String p, long dim, long hidden) {
        shapes.put(p + ".w1.weight", new long[] {hidden, dim});
        shapes.put(p + ".w2.weight", new long[] {dim, hidden});
        shapes.put(p + ".w3.weight", new long[] {hidden, dim});
    }

    @Test
    void groupedEqualsDenseAndRowsAreIndependent() {
        try (MoeFeedForward moe = random(64, 256, 128, 4, 2, 1); PointerScope s = new PointerScope()) {
            Tensor x = io.mmdit4j.sampling.Noise.randn(new long[] {2, 40, 64}, 2, DType.F32);
            Tensor grouped = moe.forward(x), dense = moe.forwardDense(x);
            assertTrue(grouped.allclose(dense, 1e-5, 1e-6, false), "max |grouped − dense| = " + grouped.sub(dense).abs().max().item_float());
            Tensor row1 = moe.forward(x.narrow(0, 1, 1));
            assertTrue(row1.allclose(grouped.narrow(0, 1, 1), 1e-5, 1e-6, false), "a batch row alone (other GEMM blocking of the gate)");
            Tensor changed = x.clone();
            changed.narrow(0, 0, 1).mul_(new org.bytedeco.pytorch.Scalar(-2.0));    // another routing for row 0
            assertTrue(equal(moe.forward(changed).narrow(0, 1, 1), grouped.narrow(0, 1, 1)),
                    "row 1 is bit-identical whatever row 0's routing: the routed GEMMs are grouped per row");
        }
    }

    /** The grouped form runs k/E of the routed expert FLOPs: a benchmark, printed (the assertion only catches a regression). */
    @Test
    void groupedRoutingIsFasterThanTheDenseLoop() {
        try (MoeFeedForward moe = random(256, 1024, 512, 4, 2, 3); PointerScope s = new PointerScope()) {
            Tensor x = io.mmdit4j.sampling.Noise.randn(new long[] {1, 1024, 256}, 4, DType.F32);
            for (int i = 0; i < 2; i++) {
                moe.forward(x).close();
                moe.forwardDense(x).close();
            }
            long grouped = Long.MAX_VALUE, dense = Long.MAX_VALUE;
            for (int i = 0; i < 5; i++) {
                long t0 = System.nanoTime();
                moe.forward(x).close();
                long t1 = System.nanoTime();
                moe.forwardDense(x).close();
                long t2 = System.nanoTime();
                grouped = Math.min(grouped, t1 - t0);
                dense = Math.min(dense, t2 - t1);
            }
            System.out.printf(Locale.ROOT, "MoE 1024 tokens, D 256, hidden 1024, 4 experts top-2 + shared 512: grouped %.2f ms, dense %.2f ms (%.2fx)%n",
                    grouped / 1e6, dense / 1e6, (double) dense / grouped);
            assertTrue(grouped < 1.25 * dense, "grouped " + grouped / 1e6 + " ms vs dense " + dense / 1e6 + " ms"); // lenient: shared CPUs
        }
    }
}
