package io.mmdit4j.sampling;

import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Placement;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.runtime.Transfers;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CancellationException;

/**
 * The denoising loop every family shares: for each step of a {@link Sampler} (a {@link Schedule}'s flow-matching Euler
 * step, or the family's own rule), the family's {@link Velocity} (its transformer forward, plus CFG or whatever it
 * combines), the sampler's step, the step's wall time, and the {@link StepListener}, which may cancel. The latents move
 * to the model's device once, before the first step; each step
 * runs in its own native-memory scope, so nothing accumulates over the loop.
 *
 * <p>Non-finite latents fail the run ({@link NonFiniteException}) naming the first step that produced them: NaN or
 * infinity would otherwise decode to a black image that looks like a result. Each step queues one
 * {@code isfinite(x).all()} flag on the latents' device, which costs a reduction over the latents (tiny next to a
 * transformer forward) but no host synchronisation; on the CPU the flags are read every {@link #CHECK_EVERY} steps and
 * after the last one (a read costs nothing there, and a bad run stops early). Off the CPU they are read once, after the
 * last step: a read is a synchronisation that would stall a GPU's queue, and the loop makes none
 * ({@link Transfers#lastLoop} counts them per step). The first bad step is named exactly either way, because every
 * step has its flag.
 */
public final class Denoiser {
    /** Steps between two reads of the finiteness flags (the last step is always read). */
    public static final int CHECK_EVERY = 4;

    private Denoiser() {}

    /**
     * The model's prediction for latents {@code x} at step {@code step}, in the form the sampler steps with (a flow
     * velocity for {@link Schedule}, a denoised x0 for {@link DenoisedEulerSampler}); the result is owned by the caller.
     */
    @FunctionalInterface
    public interface Velocity {
        Tensor at(Tensor x, int step);
    }

    /**
     * Runs every step of {@code sampler} from {@code initial} (not consumed) and returns the final latents, owned by the
     * caller, on {@code device}. {@code stepNanos} (nullable, one slot per step) receives each step's time (wall; on CUDA between device events around the step, read after the loop);
     * {@code sampler} is not closed here.
     *
     * @throws CancellationException when the listener returns false (nothing is leaked)
     */
    public static Tensor run(Sampler sampler, Tensor initial, Velocity velocity, DeviceSpec device, StepListener listener, long[] stepNanos) {
        if (stepNanos != null && stepNanos.length < sampler.steps()) {
            throw new IllegalArgumentException(stepNanos.length + " timing slots for " + sampler.steps() + " steps");
        }
        StepListener l = listener == null ? StepListener.NONE : listener;
        Tensor x = initial;
        List<Tensor> flags = new ArrayList<>(); // unread finiteness flags; flags.get(k) belongs to step firstUnread + k
        int firstUnread = -1;                   // -1: the initial latents
        // off the host's clock (CUDA: a step returns when it is queued) the steps' times come from device events, read after the loop
        io.mmdit4j.runtime.DeviceTimer timer = io.mmdit4j.runtime.DeviceTimer.of(device);
        Object[] marks = timer == io.mmdit4j.runtime.DeviceTimer.WALL || stepNanos == null ? null : new Object[sampler.steps() + 1];
        try (Placement.Scope placement = Placement.checkIfEnabled(device)) {
            if (device != null && !DeviceSpec.of(initial).equals(device)) { // the Euler step runs where the velocity is
                x = Transfers.toOwned(initial, device);                     // once per request, before the first step
            }
            boolean readEarly = x.is_cpu(); // off the CPU a read is a synchronisation: only after the last step
            flags.add(finite(x));
            Transfers.loopStarted();
            if (marks != null) marks[0] = timer.mark();
            for (int i = 0; i < sampler.steps(); i++) {
                long t0 = System.nanoTime();
                Transfers.stepStarted(i, device);
                try (PointerScope step = new PointerScope()) {
                    Tensor v = velocity.at(x, i);          // owned
                    Placement.require("denoising step " + i, v, x);
                    Tensor next = sampler.step(v, i, x);  // owned
                    v.close();
                    if (x != initial) x.close();
                    x = next;
                }
                if (marks != null) marks[i + 1] = timer.mark();
                flags.add(finite(x));
                if (readEarly && (i + 1) % CHECK_EVERY == 0 || i == sampler.steps() - 1) {
                    if (i == sampler.steps() - 1) Transfers.stepEnded(); // the last read is after the loop
                    readFlags(flags, firstUnread, sampler);
                    firstUnread = i + 1;
                }
                if (i < sampler.steps() - 1) Transfers.stepEnded();
                long elapsed = System.nanoTime() - t0;
                if (stepNanos != null) stepNanos[i] = elapsed;
                if (!l.onStep(new StepListener.Step(i, sampler.steps(), sampler.sigma(i + 1), elapsed, x))) {
                    throw new CancellationException("generation cancelled after step " + (i + 1) + " of " + sampler.steps());
                }
            }
            if (marks != null) {
                for (int i = 0; i < sampler.steps(); i++) stepNanos[i] = timer.nanosBetween(marks[i], marks[i + 1]);
            }
            Tensor out = x;
            x = initial; // handed to the caller, not released below
            return out;
        } finally {
            Transfers.loopEnded();
            flags.forEach(Native::release);
            if (x != initial) Native.release(x);
        }
    }

    /** A 0-dim bool tensor on the latents' device: whether every value is finite (no host synchronisation); null on meta. */
    private static Tensor finite(Tensor x) {
        if (x.is_meta()) return null; // shapes only: nothing to check
        try (PointerScope scope = new PointerScope()) {
            return Tensors.keep(x.isfinite().all());
        }
    }

    /** Reads and releases the queued flags in step order; throws at the first false one. */
    private static void readFlags(List<Tensor> flags, int firstStep, Sampler sampler) {
        try {
            for (int k = 0; k < flags.size(); k++) {
                if (flags.get(k) == null || Transfers.sync(flags.get(k)).item_bool()) continue;
                int step = firstStep + k;
                if (step < 0) {
                    throw new NonFiniteException(NonFiniteException.Stage.INITIAL_LATENTS, -1,
                            "the initial latents (the noise) contain NaN or infinity");
                }
                throw new NonFiniteException(NonFiniteException.Stage.STEP, step, String.format(Locale.ROOT,
                        "the latents became NaN or infinite at denoising step %d of %d (index %d, sigma %.4f -> %.4f): the model's weights "
                                + "or the guidance overflow; no image would be meaningful", step + 1, sampler.steps(), step,
                        sampler.sigma(step), sampler.sigma(step + 1)));
            }
        } finally {
            flags.forEach(Native::release);
            flags.clear();
        }
    }
}
