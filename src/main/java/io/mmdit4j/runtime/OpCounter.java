package io.mmdit4j.runtime;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * Records the matrix multiplications of a forward on the current thread (every linear layer with its exact
 * shape, and every attention call): FLOP counts for {@code inspect} and {@code bench}, and the shapes that
 * {@code bench} times alone for its GEMM floor. Off by default; when off it costs one ThreadLocal read per op.
 */
public final class OpCounter {
    private static final ThreadLocal<Recording> ACTIVE = new ThreadLocal<>();

    private OpCounter() {}

    /** {@code [m, k] x [k, n]}: 2·m·k·n FLOPs. */
    public record LinearCall(long m, long k, long n, DType dtype) {
        public double flops() { return 2.0 * m * k * n; }
    }

    /** {@code softmax(QKᵀ)V} over {@code [b, h, sq, d]} queries and {@code sk} keys: two matmuls, 4·b·h·sq·sk·d FLOPs. */
    public record AttentionCall(long b, long h, long sq, long sk, long d, DType dtype) {
        public double flops() { return 4.0 * b * h * sq * sk * d; }
    }

    /** Starts recording on this thread until {@link Recording#close()}. */
    public static Recording record() {
        Recording r = new Recording(ACTIVE.get());
        ACTIVE.set(r);
        return r;
    }

    public static void linear(long m, long k, long n, DType dtype) {
        Recording r = ACTIVE.get();
        if (r != null) r.linears.add(new LinearCall(m, k, n, dtype));
    }

    public static void attention(long b, long h, long sq, long sk, long d, DType dtype) {
        Recording r = ACTIVE.get();
        if (r != null) r.attentions.add(new AttentionCall(b, h, sq, sk, d, dtype));
    }

    public static boolean recording() {
        return ACTIVE.get() != null;
    }

    /** What one recording saw. */
    public static final class Recording implements AutoCloseable {
        private final Recording outer;
        private final List<LinearCall> linears = new ArrayList<>();
        private final List<AttentionCall> attentions = new ArrayList<>();

        private Recording(Recording outer) {
            this.outer = outer;
        }

        public List<LinearCall> linears() { return Collections.unmodifiableList(linears); }
        public List<AttentionCall> attentions() { return Collections.unmodifiableList(attentions); }

        public double linearFlops() {
            return linears.stream().mapToDouble(LinearCall::flops).sum();
        }

        public double attentionFlops() {
            return attentions.stream().mapToDouble(AttentionCall::flops).sum();
        }

        public double totalFlops() {
            return linearFlops() + attentionFlops();
        }

        @Override
        public void close() {
            if (ACTIVE.get() == this) ACTIVE.set(outer);
            if (outer != null) {
                outer.linears.addAll(linears);
                outer.attentions.addAll(attentions);
            }
        }
    }
}
