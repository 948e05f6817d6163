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
        if (terminal) {
            int done = (s.index() + 1) * 30 / s.steps();
            System.err.printf(Locale.ROOT, "\r[%s%s] step %d/%d sigma %.3f %.1f s", "#".repeat(done), " ".repeat(30 - done), s.index() + 1, s.steps(),
                    s.sigma(), total / 1e9);
        } else {
            System.err.printf(Locale.ROOT, "step %d/%d sigma %.4f %.2f s%n", s.index() + 1, s.steps(), s.sigma(), s.elapsedNanos() / 1e9);
        }
        return true;
    }

    void done() {
        if (terminal) System.err.println();
    }
}
