package io.mmdit4j.train;

import java.util.List;

/**
 * Learning rate per optimizer step: constant, or linear warm-up then cosine decay to 0 (diffusers'
 * {@code get_cosine_schedule_with_warmup}: {@code lr·s/w} for {@code s < w}, then {@code lr·½(1 + cos(π·p))} with
 * {@code p = (s − w)/(T − w)}). {@code s} is the number of steps taken before this one (0 for the first).
 *
 * <p>{@code stageEnds} (increasing, each above the warm-up and below {@code total}) make a staged schedule: a step
 * {@code s} below the first stage end {@code e} follows the cosine of a run of {@code e} steps, and so on, the last stage
 * the cosine of {@code total}. That is what a finished run continued with {@code train --resume --steps N} follows (each
 * continuation recomputes the cosine for its new total), so one run with the stages reproduces such a chain of runs.
 */
public record LrSchedule(double lr, int warmup, int total, boolean cosine, List<Integer> stageEnds) {
    public LrSchedule {
        if (!(lr > 0)) throw new IllegalArgumentException("learning rate must be > 0, got " + lr);
        if (warmup < 0 || total < 1) throw new IllegalArgumentException("warm-up must be >= 0 and total steps >= 1");
        stageEnds = List.copyOf(stageEnds);
        int previous = warmup;
        for (int e : stageEnds) {
            if (e <= previous || e >= total) {
                throw new IllegalArgumentException("learning-rate stage ends must increase, each above the warm-up (" + warmup + ") and below the total steps ("
                        + total + "), got " + stageEnds);
            }
            previous = e;
        }
        if (!cosine && !stageEnds.isEmpty()) throw new IllegalArgumentException("learning-rate stages shape the cosine decay; a constant rate has none");
    }

    public LrSchedule(double lr, int warmup, int total, boolean cosine) {
        this(lr, warmup, total, cosine, List.of());
    }

    public static LrSchedule constant(double lr) {
        return new LrSchedule(lr, 0, 1, false);
    }

    public double at(int s) {
        if (s < warmup) return lr * s / Math.max(1, warmup);
        if (!cosine) return lr;
        int end = total;
        for (int e : stageEnds) {
            if (s < e) {
                end = e;
                break;
            }
        }
        double p = (double) (s - warmup) / Math.max(1, end - warmup);
        return lr * Math.max(0.0, 0.5 * (1.0 + Math.cos(Math.PI * Math.min(1.0, p))));
    }
}
