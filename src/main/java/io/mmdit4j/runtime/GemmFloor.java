package io.mmdit4j.runtime;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.TensorOptions;

import java.util.LinkedHashMap;
import java.util.Map;

import static org.bytedeco.pytorch.global.torch.createCPUGenerator;
import static org.bytedeco.pytorch.global.torch.linear;
import static org.bytedeco.pytorch.global.torch.matmul;
import static org.bytedeco.pytorch.global.torch.randn;

/**
 * The GEMM floor of a forward: each of its matrix multiplications (every linear with its exact shape and
 * bias, and the two matmuls of every attention) timed alone in this JVM with the same dtype and threads,
 * best of a few runs, summed over the forward. A forward can approach but hardly beat it; the ratio
 * forward/floor is the overhead of everything else (norms, RoPE, activations, copies, dispatch).
 */
public final class GemmFloor {
    private GemmFloor() {}

    /** The floor split into the linear layers and the attention matmuls, in seconds. */
    public record Split(double linearSeconds, double attentionSeconds) {
        public double seconds() { return linearSeconds + attentionSeconds; }
    }

    /** Seconds. */
    public static double seconds(OpCounter.Recording ops, int reps) {
        return split(ops, reps).seconds();
    }

    public static Split split(OpCounter.Recording ops, int reps) {
        Map<OpCounter.LinearCall, Integer> linears = new LinkedHashMap<>();
        ops.linears().forEach(l -> linears.merge(l, 1, Integer::sum));
        Map<OpCounter.AttentionCall, Integer> attentions = new LinkedHashMap<>();
        ops.attentions().forEach(a -> attentions.merge(a, 1, Integer::sum));
        double lin = 0, att = 0;
        for (Map.Entry<OpCounter.LinearCall, Integer> e : linears.entrySet()) lin += e.getValue() * linearSeconds(e.getKey(), reps);
        for (Map.Entry<OpCounter.AttentionCall, Integer> e : attentions.entrySet()) att += e.getValue() * attentionSeconds(e.getKey(), reps);
        return new Split(lin, att);
    }

    static double linearSeconds(OpCounter.LinearCall l, int reps) {
        try (PointerScope scope = new PointerScope()) {
            GeneratorOptional gen = new GeneratorOptional(createCPUGenerator(0));
            TensorOptions o = new TensorOptions(l.dtype().scalarType());
            Tensor x = randn(new long[] {l.m(), l.k()}, gen, o), w = randn(new long[] {l.n(), l.k()}, gen, o), b = randn(new long[] {l.n()}, gen, o);
            TensorOptional bias = new TensorOptional(b);
            return best(reps, () -> linear(x, w, bias));
        }
    }

    static double attentionSeconds(OpCounter.AttentionCall a, int reps) {
        try (PointerScope scope = new PointerScope()) {
            GeneratorOptional gen = new GeneratorOptional(createCPUGenerator(0));
            TensorOptions o = new TensorOptions(a.dtype().scalarType());
            Tensor q = randn(new long[] {a.b(), a.h(), a.sq(), a.d()}, gen, o);
            Tensor kt = randn(new long[] {a.b(), a.h(), a.d(), a.sk()}, gen, o);
            Tensor p = randn(new long[] {a.b(), a.h(), a.sq(), a.sk()}, gen, o);
            Tensor v = randn(new long[] {a.b(), a.h(), a.sk(), a.d()}, gen, o);
            return best(reps, () -> matmul(q, kt)) + best(reps, () -> matmul(p, v));
        }
    }

    private static double best(int reps, java.util.function.Supplier<Tensor> op) {
        op.get().close(); // warm-up
        long best = Long.MAX_VALUE;
        for (int i = 0; i < Math.max(1, reps); i++) {
            long t0 = System.nanoTime();
            op.get().close();
            best = Math.min(best, System.nanoTime() - t0);
        }
        return best / 1e9;
    }
}
