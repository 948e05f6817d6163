package io.mmdit4j.cli;

import io.mmdit4j.sampling.StepListener;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;

import java.util.Locale;
import java.util.function.Supplier;

/**
 * Progress on standard error: on a terminal a bar drawn in place by me.tongfei:progressbar (elapsed time, ETA, it/s); in a
 * log (standard error not a terminal: CI, files) one plain line per update with the same figures, in order; nothing with
 * {@code --quiet}. As a {@link StepListener} it follows a generation's steps over all its chunks, with the current sigma.
 */
final class Progress implements StepListener, AutoCloseable {
    private final String task;
    private final String unit;
    private ProgressBar bar; // made at the first update, when the total is known
    private final boolean terminal = System.console() != null;
    private final long start = System.nanoTime();

    private Progress(String task, String unit) {
        this.task = task;
        this.unit = unit;
    }

    /** A bar for {@code task}, counted in {@code unit}s ({@code " it"}, {@code " cells"}). */
    static Progress of(String task, String unit) {
        return new Progress(task, unit);
    }

    private ProgressBar bar(long max) {
        if (bar == null) bar = new ProgressBarBuilder().setTaskName(task).setInitialMax(max).setUnit(unit, 1).showSpeed().build();
        return bar;
    }

    /** Moves to {@code done} of {@code max}, with a note after the numbers (e.g. the loss). */
    void update(long done, long max, String note) {
        if (Verbosity.quiet()) return;
        if (!terminal) { // the library redraws on a timer thread, for terminals; a log gets one ordered line per update
            line(done, max, note);
            return;
        }
        ProgressBar b = bar(max);
        if (b.getMax() != max) b.maxHint(max);
        b.stepTo(done);
        b.setExtraMessage(note == null ? "" : " " + note);
    }

    /** {@code generate 3/8 it (0:00:02 elapsed, ETA 0:00:04, 1.52 it/s) sigma 0.412} */
    private void line(long done, long max, String note) {
        long now = System.nanoTime();
        double secs = (now - start) / 1e9, rate = secs > 0 ? done / secs : Double.NaN;
        String eta = done > 0 && max >= done ? clock((max - done) * secs / done) : "?";
        System.err.printf(Locale.ROOT, "%s %d/%d%s (%s elapsed, ETA %s, %s%s/s)%s%n", task, done, max, unit, clock(secs), eta,
                Double.isFinite(rate) ? String.format(Locale.ROOT, "%.2f", rate) : "?", unit, note == null ? "" : " " + note);
    }

    private static String clock(double seconds) {
        long s = Math.round(seconds);
        return String.format(Locale.ROOT, "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60);
    }

    @Override
    public boolean onStep(Step s) {
        long max = (long) s.steps() * s.chunks(), done = (long) s.chunk() * s.steps() + s.index() + 1;
        update(done, max, String.format(Locale.ROOT, "sigma %.3f%s", s.sigma(), s.chunks() > 1 ? " chunk " + (s.chunk() + 1) + "/" + s.chunks() : ""));
        return true;
    }

    @Override
    public void close() {
        if (bar != null) bar.close();
        bar = null;
    }

    /**
     * Runs {@code work} under an open-ended bar with its elapsed time (model loads: no total is known), drawn only on a
     * terminal; a log gets the command's own summary line instead.
     */
    static <T> T during(String task, Supplier<T> work) {
        if (Verbosity.quiet() || System.console() == null) return work.get();
        try (ProgressBar b = new ProgressBarBuilder().setTaskName(task).setInitialMax(-1).setUpdateIntervalMillis(250).hideEta().build()) {
            return work.get();
        }
    }
}
