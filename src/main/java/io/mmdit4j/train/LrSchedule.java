package io.mmdit4j.train;

/**
 * Learning rate per optimizer step: constant, or linear warm-up then cosine decay to 0 (diffusers'
 * {@code get_cosine_schedule_with_warmup}: {@code lr·s/w} for {@code s < w}, then {@code lr·½(1 + cos(π·p))} with
 * {@code p = (s − w)/(T − w)}). {@code s} is the number of steps taken before this one (0 for the first).
 */
public record LrSchedule(double lr, int warmup, int total, boolean cosine) {
    public LrSchedule {
        if (!(lr > 0)) throw new IllegalArgumentException("learning rate must be > 0, got " + lr);
        if (warmup < 0 || total < 1) throw new IllegalArgumentException("warm-up must be >= 0 and total steps >= 1");
    }

    public static LrSchedule constant(double lr) {
        return new LrSchedule(lr, 0, 1, false);
    }

    public double at(int s) {
        if (s < warmup) return lr * s / Math.max(1, warmup);
        if (!cosine) return lr;
        double p = (double) (s - warmup) / Math.max(1, total - warmup);
        return lr * Math.max(0.0, 0.5 * (1.0 + Math.cos(Math.PI * Math.min(1.0, p))));
    }
}
