package io.mmdit4j.runtime;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Host↔device traffic the engine's own code asks for, counted: every move of a tensor between devices in the pipelines
 * and transformers goes through {@link #to}, and every host read of a value that lives on a device (an {@code item()},
 * a copy to a Java array) is declared with {@link #sync}. On a GPU each of these is a blocking copy or a stall of the
 * launch queue; on {@code meta} nothing moves, but the calls are the same, so a meta run counts exactly what a CUDA
 * run would ask for. The denoising loop ({@code sampling.Denoiser}) brackets each step with {@link #stepStarted} /
 * {@link #stepEnded}, and {@link #lastLoop} gives the counts per step of the calling thread's last loop: after the
 * per-request set-up (text states, timesteps, guidance, RoPE moved once) a step must ask for nothing.
 *
 * <p>What is counted is what the code calls, not what the driver does: a copy libtorch makes inside an op (a CPU
 * 0-dim tensor read as a scalar, say) is invisible here; the placement check ({@link Placement}) is what refuses CPU
 * tensors reaching a device op. CPU-to-CPU calls are not transfers and are not counted.
 */
public final class Transfers {
    private Transfers() {}

    /** Counts since the process started (or between two {@link #snapshot}s). */
    public record Counts(long hostToDevice, long deviceToHost, long syncs) {
        public static final Counts ZERO = new Counts(0, 0, 0);

        public Counts minus(Counts o) {
            return new Counts(hostToDevice - o.hostToDevice, deviceToHost - o.deviceToHost, syncs - o.syncs);
        }

        /** Copies in either direction plus host reads of device values. */
        public long total() {
            return hostToDevice + deviceToHost + syncs;
        }

        @Override
        public String toString() {
            return "h2d " + hostToDevice + ", d2h " + deviceToHost + ", syncs " + syncs;
        }
    }

    private static final AtomicLong H2D = new AtomicLong(), D2H = new AtomicLong(), SYNCS = new AtomicLong();
    /** Per-thread counts, so that a loop's steps are not charged with another thread's work. */
    private static final ThreadLocal<long[]> LOCAL = ThreadLocal.withInitial(() -> new long[3]);
    private static final ThreadLocal<List<Counts>> LAST_LOOP = ThreadLocal.withInitial(ArrayList::new);
    private static final ThreadLocal<Counts> STEP_START = new ThreadLocal<>();
    /** The step being run on this thread ({@code -1}: none), and its device, for the strict mode. */
    private static final ThreadLocal<int[]> STEP = ThreadLocal.withInitial(() -> new int[] {-1});
    private static final ThreadLocal<DeviceSpec> STEP_DEVICE = new ThreadLocal<>();
    private static volatile boolean strict = Boolean.getBoolean("mmdit.strictSync");

    /** Thrown in strict mode when a denoising step asks for a host↔device copy or a host read of a device value. */
    public static final class HostSyncException extends IllegalStateException {
        public HostSyncException(String message) {
            super(message);
        }
    }

    /**
     * Strict mode ({@code generate --strict-sync}, {@code -Dmmdit.strictSync=true}): a copy or host read declared inside a
     * denoising step throws {@link HostSyncException} at once, on any device; on CUDA the steps also run with libtorch's
     * sync-debug mode set to error ({@link Torch#setSyncDebugMode}), which catches the synchronisations libtorch makes
     * by itself.
     */
    public static void setStrict(boolean on) {
        strict = on;
    }

    public static boolean strict() {
        return strict;
    }

    private static void refuseInStep(String what) {
        int step = STEP.get()[0];
        if (strict && step >= 0) {
            throw new HostSyncException("strict sync: denoising step " + step + " asked for " + what + " (per-request inputs belong on "
                    + "the device before the loop; see runtime.Transfers)");
        }
    }

    /** The process-wide counts. */
    public static Counts global() {
        return new Counts(H2D.get(), D2H.get(), SYNCS.get());
    }

    /** The calling thread's counts. */
    public static Counts snapshot() {
        long[] c = LOCAL.get();
        return new Counts(c[0], c[1], c[2]);
    }

    /**
     * {@code t} on {@code device} in {@code dtype}: {@code t} itself converted in place of its device when it is
     * already there (no transfer), else a copy that is counted. In the caller's scope, like any op result.
     */
    public static Tensor to(Tensor t, DeviceSpec device, ScalarType dtype) {
        DeviceSpec from = DeviceSpec.of(t);
        if (from.equals(device)) return t.to(dtype);
        count(from, device);
        try (Device d = device.torchDevice()) {
            return t.to(d, dtype);
        }
    }

    /** {@link #to(Tensor, DeviceSpec, ScalarType)} keeping the dtype. */
    public static Tensor to(Tensor t, DeviceSpec device) {
        return to(t, device, t.scalar_type());
    }

    /**
     * A result's values on the host in {@code dtype} (one counted device-to-host copy); on {@code meta}, where there are
     * no values, the result stays a shapes-only meta tensor (nothing to copy: a meta run's images are never data).
     */
    public static Tensor toHost(Tensor t, ScalarType dtype) {
        if (t.is_meta()) return t.to(dtype);
        return to(t, DeviceSpec.CPU, dtype);
    }

    /** {@link #to} as a tensor the caller owns (outside any scope). */
    public static Tensor toOwned(Tensor t, DeviceSpec device) {
        if (t == null) return null;
        try (PointerScope scope = new PointerScope()) {
            return Tensors.keep(to(t, device));
        }
    }

    /** Records a host↔device copy made by other means (a tensor created on the host and sent to {@code to}). */
    public static void count(DeviceSpec from, DeviceSpec to) {
        if (from.equals(to)) return;
        refuseInStep("a copy " + from + " -> " + to);
        long[] c = LOCAL.get();
        if (from.isCpu()) {
            H2D.incrementAndGet();
            c[0]++;
        } else if (to.isCpu()) {
            D2H.incrementAndGet();
            c[1]++;
        } else { // device to device (cuda:0 → cuda:1, meta ↔ cuda): a copy the host waits for as well
            H2D.incrementAndGet();
            c[0]++;
        }
    }

    /**
     * Declares a host read of {@code t}'s values (an {@code item()}, a copy to a Java array, a branch on a value): a
     * synchronisation when {@code t} lives on a device, nothing on the CPU. Returns {@code t}.
     */
    public static Tensor sync(Tensor t) {
        if (t != null && !t.is_cpu()) {
            refuseInStep("a host read of a " + DeviceSpec.of(t) + " tensor");
            SYNCS.incrementAndGet();
            LOCAL.get()[2]++;
        }
        return t;
    }

    /** Called by the denoising loop before its first step: forgets the previous loop's counts. */
    public static void loopStarted() {
        LAST_LOOP.get().clear();
    }

    /** Called by the denoising loop before the work of step {@code step} on {@code device} (null: the inputs' own). */
    public static void stepStarted(int step, DeviceSpec device) {
        STEP_START.set(snapshot());
        STEP.get()[0] = step;
        if (strict && device != null && device.isCuda()) {
            STEP_DEVICE.set(device);
            Torch.setSyncDebugMode(Torch.SYNC_DEBUG_ERROR);
        }
    }

    /** Called by the denoising loop after a step's work (before its listener). */
    public static void stepEnded() {
        Counts start = STEP_START.get();
        LAST_LOOP.get().add(snapshot().minus(start == null ? Counts.ZERO : start));
        STEP.get()[0] = -1;
        if (STEP_DEVICE.get() != null) {
            STEP_DEVICE.remove();
            Torch.setSyncDebugMode(Torch.SYNC_DEBUG_DISABLED);
        }
    }

    /** Called by the denoising loop when it ends, normally or not: no step is running any more. */
    public static void loopEnded() {
        if (STEP.get()[0] >= 0 && STEP_DEVICE.get() != null) Torch.setSyncDebugMode(Torch.SYNC_DEBUG_DISABLED);
        STEP.get()[0] = -1;
        STEP_DEVICE.remove();
    }

    /** The counts of each step of the calling thread's last denoising loop (a copy). */
    public static List<Counts> lastLoop() {
        return List.copyOf(LAST_LOOP.get());
    }
}
