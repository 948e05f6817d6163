package io.mmdit4j.runtime;

import org.bytedeco.pytorch.Tensor;

import java.util.Arrays;

/**
 * A checking mode for device placement: while it is on, the engine's ops ({@code nn.Linear}, attention, RoPE, the
 * adaLN modulation, norms, the VAE convolutions, the sampler step) assert that every tensor they receive is on the
 * device the generation runs on, and fail with the op's name and the tensor's shape and device otherwise. libtorch
 * refuses most mixes by itself, but not all: a CPU 0-dim tensor is accepted by a CUDA or meta op (read as a scalar,
 * which on CUDA is a blocking copy), and an op that only views its input never checks. Off, each check is one read of
 * a volatile field.
 *
 * <p>On with {@code -Dmmdit.checkPlacement=true} (the device then comes from the generation), with
 * {@code generate --check-placement}, or for a block of code with {@link #check(DeviceSpec)}; the denoising loop and
 * the decoders enable it for the request's device when the process-wide switch is on. Per thread.
 */
public final class Placement {
    private Placement() {}

    private static final ThreadLocal<DeviceSpec> EXPECTED = new ThreadLocal<>();
    /** Whether any thread has a check open (fast path when none has). */
    private static volatile int open;
    private static volatile boolean enabled = Boolean.getBoolean("mmdit.checkPlacement");

    /** Thrown when a tensor reaches an op on the wrong device. */
    public static final class MisplacedTensorException extends IllegalStateException {
        public MisplacedTensorException(String message) {
            super(message);
        }
    }

    /** Turns the process-wide switch on or off (what {@code --check-placement} sets). */
    public static void setEnabled(boolean on) {
        enabled = on;
    }

    public static boolean enabled() {
        return enabled;
    }

    /** A scope, per thread, in which ops check that their tensors are on {@code device}; scopes nest. */
    public static Scope check(DeviceSpec device) {
        return new Scope(device);
    }

    /** {@link #check(DeviceSpec)} when the process-wide switch is on, else a scope that checks nothing. */
    public static Scope checkIfEnabled(DeviceSpec device) {
        return enabled && device != null ? new Scope(device) : Scope.NONE;
    }

    /** The device being checked on this thread, or null. */
    public static DeviceSpec expected() {
        return open == 0 ? null : EXPECTED.get();
    }

    /** {@link #require(String, Tensor...)} for one tensor, without an array on the hot path when no check is open. */
    public static void require(String op, Tensor a) {
        if (open != 0) require(op, new Tensor[] {a});
    }

    /** {@link #require(String, Tensor...)} for two tensors. */
    public static void require(String op, Tensor a, Tensor b) {
        if (open != 0) require(op, new Tensor[] {a, b});
    }

    /** {@link #require(String, Tensor...)} for three tensors. */
    public static void require(String op, Tensor a, Tensor b, Tensor c) {
        if (open != 0) require(op, new Tensor[] {a, b, c});
    }

    /** {@link #require(String, Tensor...)} for four tensors. */
    public static void require(String op, Tensor a, Tensor b, Tensor c, Tensor d) {
        if (open != 0) require(op, new Tensor[] {a, b, c, d});
    }

    /** Asserts that every non-null tensor is on the checked device; a no-op when no check is open on this thread. */
    public static void require(String op, Tensor... tensors) {
        if (open == 0) return;
        DeviceSpec want = EXPECTED.get();
        if (want == null) return;
        for (int i = 0; i < tensors.length; i++) {
            Tensor t = tensors[i];
            if (t == null || t.isNull()) continue;
            if (!on(t, want)) {
                throw new MisplacedTensorException(op + ": input " + i + " " + Arrays.toString(Tensors.shape(t)) + " ("
                        + Tensors.dtype(t) + ") is on " + DeviceSpec.of(t) + ", but this generation runs on " + want);
            }
        }
    }

    private static boolean on(Tensor t, DeviceSpec want) {
        return switch (want.kind()) {
            case META -> t.is_meta();
            case CPU -> t.is_cpu();
            case CUDA -> t.is_cuda() && DeviceSpec.of(t).equals(want);
        };
    }

    /** An open check; closing it restores the enclosing one. */
    public static final class Scope implements AutoCloseable {
        static final Scope NONE = new Scope();
        private final DeviceSpec previous;
        private final boolean active;
        private boolean closed;

        private Scope() {
            previous = null;
            active = false;
        }

        private Scope(DeviceSpec device) {
            previous = EXPECTED.get();
            EXPECTED.set(device);
            active = true;
            synchronized (Placement.class) {
                open++;
            }
        }

        @Override
        public void close() {
            if (!active || closed) return;
            closed = true;
            if (previous == null) EXPECTED.remove();
            else EXPECTED.set(previous);
            synchronized (Placement.class) {
                open--;
            }
        }
    }
}
