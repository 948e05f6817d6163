package io.mmdit4j.cli;

import io.mmdit4j.sampling.StepListener;

import java.util.Locale;

/** A progress bar on a terminal, a plain line per step otherwise. */
final class ProgressBar implements StepListener {
    private final boolean terminal;
    private long total;

    ProgressBar(boolean terminal) {
        this.terminal = terminal;
    }

    /** On standard error, drawn in place when it is a terminal. */
    static ProgressBar stderr() {
        return new ProgressBar(System.console() != null);
    }

    @Override
    public boolean onStep(Step s) {
        total += s.elapsedNanos();
        String chunk = s.chunks() > 1 ? String.format(Locale.ROOT, "chunk %d/%d ", s.chunk() + 1, s.chunks()) : "";
        if (terminal) {
            int done = (s.chunk() * s.steps() + s.index() + 1) * 30 / (s.chunks() * s.steps());
            System.err.printf(Locale.ROOT, "\r[%s%s] %sstep %d/%d sigma %.3f %.1f s", "#".repeat(done), " ".repeat(30 - done), chunk, s.index() + 1,
                    s.steps(), s.sigma(), total / 1e9);
        } else {
            System.err.printf(Locale.ROOT, "%sstep %d/%d sigma %.4f %.2f s%n", chunk, s.index() + 1, s.steps(), s.sigma(), s.elapsedNanos() / 1e9);
        }
        return true;
    }

    void done() {
        if (terminal) System.err.println();
    }
}
