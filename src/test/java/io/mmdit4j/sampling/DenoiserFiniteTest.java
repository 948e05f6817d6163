package io.mmdit4j.sampling;

import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Issue item 4: NaN or infinite latents fail the run and name the first step that produced them, however many steps later
 * the flags are read ({@link Denoiser#CHECK_EVERY}), instead of decoding to a black image.
 */
class DenoiserFiniteTest {
    private static final int STEPS = 10;
    private static final Schedule SCHEDULE = schedule(STEPS);

    private static Schedule schedule(int n) {
        float[] sigmas = new float[n + 1], t = new float[n];
        for (int i = 0; i < n; i++) {
            sigmas[i] = 1f - (float) i / n;
            t[i] = sigmas[i] * 1000;
        }
        return new Schedule(sigmas, t);
    }

    /** A velocity of zeros, except {@code bad} (NaN or infinity) at step {@code at}. */
    private static Denoiser.Velocity breakingAt(int at, double bad) {
        return (x, step) -> {
            try (PointerScope s = new PointerScope()) {
                Tensor v = x.mul(new Scalar(0.0));
                return Tensors.keep(step == at ? v.add(new Scalar(bad)) : v);
            }
        };
    }

    private static Tensor ones() {
        return Tensors.fromFloats(new float[] {1, 1, 1, 1, 1, 1}, 1, 3, 2);
    }

    @Test
    void theFirstNonFiniteStepIsNamedWhereverItFallsBetweenReads() {
        for (int at = 0; at < STEPS; at++) {
            List<Integer> seen = new ArrayList<>();
            int bad = at;
            try (Tensor x = ones()) {
                NonFiniteException e = assertThrows(NonFiniteException.class,
                        () -> Denoiser.run(SCHEDULE, x, breakingAt(bad, Double.NaN), null, s -> seen.add(s.index()), null));
                assertEquals(NonFiniteException.Stage.STEP, e.stage());
                assertEquals(at, e.step(), e.getMessage());
                assertTrue(e.getMessage().contains("step " + (at + 1) + " of " + STEPS + " (index " + at), e.getMessage());
                int readAt = Math.min(STEPS - 1, (at / Denoiser.CHECK_EVERY + 1) * Denoiser.CHECK_EVERY - 1);
                assertEquals(readAt - 1, seen.isEmpty() ? -1 : seen.get(seen.size() - 1),
                        "steps run until the next read of the flags, at most " + (Denoiser.CHECK_EVERY - 1) + " past the bad one");
            }
        }
    }

    @Test
    void infinityAndBadInitialLatentsAreCaughtAndFiniteRunsPass() {
        try (Tensor x = ones()) {
            NonFiniteException e = assertThrows(NonFiniteException.class,
                    () -> Denoiser.run(SCHEDULE, x, breakingAt(6, Double.POSITIVE_INFINITY), null, null, null));
            assertEquals(6, e.step());
            assertDoesNotThrow(() -> Denoiser.run(SCHEDULE, x, breakingAt(-1, 0), null, null, null).close());
        }
        try (Tensor nan = Tensors.fromFloats(new float[] {1, Float.NaN}, 1, 2)) {
            NonFiniteException e = assertThrows(NonFiniteException.class, () -> Denoiser.run(SCHEDULE, nan, breakingAt(-1, 0), null, null, null));
            assertEquals(NonFiniteException.Stage.INITIAL_LATENTS, e.stage());
            assertTrue(e.getMessage().contains("initial latents"), e.getMessage());
        }
    }

    /**
     * What the check costs on the CPU: one isfinite().all() over FLUX's 1024x1024 latents ([1, 4096, 64] fp32) per step. A
     * FLUX step at that size takes seconds; the bound here only guards against an accidental per-step copy to the host.
     */
    @Test
    void theCheckIsCheapNextToAStep() {
        try (Tensor x = Tensors.fromFloats(new float[4096 * 64], 1, 4096, 64)) {
            Schedule one = schedule(1);
            Denoiser.Velocity zero = breakingAt(-1, 0);
            for (int i = 0; i < 50; i++) Denoiser.run(one, x, zero, null, null, null).close(); // warm-up
            long t0 = System.nanoTime();
            try (PointerScope s = new PointerScope()) {
                for (int i = 0; i < 200; i++) x.isfinite().all().item_bool();
            }
            double micros = (System.nanoTime() - t0) / 200 / 1e3;
            System.out.printf("isfinite().all() on [1, 4096, 64] fp32: %.1f us%n", micros);
            assertTrue(micros < 5_000, micros + " us");
        }
    }
}
