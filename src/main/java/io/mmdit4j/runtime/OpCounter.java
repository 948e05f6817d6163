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
        return record(false);
    }

    /**
     * Starts recording; when {@code timed}, the ops also add their wall time (CPU ops are synchronous, so
     * the time around the call is the op's time; on CUDA it would only be the launch).
     */
    public static Recording record(boolean timed) {
        Recording r = new Recording(ACTIVE.get(), timed);
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

    /** Whether the active recording wants op times ({@link #linearNanos}, {@link #attentionNanos}). */
    public static boolean timing() {
        Recording r = ACTIVE.get();
        return r != null && r.timed;
    }

    public static void linearNanos(long nanos) {
        Recording r = ACTIVE.get();
        if (r != null) r.linearNanos += nanos;
    }

    public static void attentionNanos(long nanos) {
        Recording r = ACTIVE.get();
        if (r != null) r.attentionNanos += nanos;
    }

    /** What one recording saw. */
    public static final class Recording implements AutoCloseable {
        private final Recording outer;
        private final List<LinearCall> linears = new ArrayList<>();
        private final List<AttentionCall> attentions = new ArrayList<>();
        private final boolean timed;
        private long linearNanos;
        private long attentionNanos;

        private Recording(Recording outer, boolean timed) {
            this.outer = outer;
            this.timed = timed;
        }

        /** Wall time spent inside linear layers (timed recordings only). */
        public long linearNanos() { return linearNanos; }

        /** Wall time spent inside attention kernels (timed recordings only). */
        public long attentionNanos() { return attentionNanos; }

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
                outer.linearNanos += linearNanos;
                outer.attentionNanos += attentionNanos;
            }
        }
    }
}
