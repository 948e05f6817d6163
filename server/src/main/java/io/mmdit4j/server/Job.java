package io.mmdit4j.server;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.mmdit4j.pipeline.GenerationSettings;

import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

/**
 * One generation request from the moment it is accepted: queued, running (its step), then exactly one of succeeded (its
 * PNGs, each with the settings record the command line writes), failed (an {@link ApiException}) or cancelled. State
 * changes come from the scheduler thread; readers (HTTP handlers, event streams) see consistent snapshots.
 */
final class Job {
    enum State {
        QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED;

        String text() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }

        boolean terminal() {
            return this == SUCCEEDED || this == FAILED || this == CANCELLED;
        }
    }

    /** One image of a finished job: its PNG (settings in the text chunks) and its own settings record. */
    record Image(byte[] png, long seed, ObjectNode settings) {}

    private static final SecureRandom IDS = new SecureRandom();

    final String id;
    final GenerationSettings settings;
    final long createdMillis = System.currentTimeMillis();
    final long createdNanos = System.nanoTime();
    /** Completes when the job reaches a terminal state (never exceptionally). */
    final CompletableFuture<Job> done = new CompletableFuture<>();
    /** Event subscribers ({@link Events}). */
    final List<Events.Subscriber> subscribers = new CopyOnWriteArrayList<>();

    private State state = State.QUEUED;
    private int step;
    private float sigma = Float.NaN;
    private List<Image> images = List.of();
    private ApiException error;
    private volatile boolean cancelRequested;
    private String cancelReason;
    private long finishedNanos;
    private long startedNanos;

    Job(GenerationSettings settings) {
        byte[] b = new byte[12];
        IDS.nextBytes(b);
        this.id = "gen_" + HexFormat.of().formatHex(b);
        this.settings = settings;
    }

    synchronized State state() {
        return state;
    }

    synchronized int step() {
        return step;
    }

    synchronized float sigma() {
        return sigma;
    }

    int steps() {
        return settings.steps();
    }

    int images() {
        return settings.images();
    }

    synchronized List<Image> result() {
        return images;
    }

    /** Bytes of the PNGs kept. */
    synchronized long resultBytes() {
        long n = 0;
        for (Image i : images) n += i.png().length;
        return n;
    }

    synchronized ApiException error() {
        return error;
    }

    synchronized String cancelReason() {
        return cancelReason;
    }

    /** Seconds from acceptance to the terminal state (or until now). */
    synchronized double seconds() {
        return ((state.terminal() ? finishedNanos : System.nanoTime()) - createdNanos) / 1e9;
    }

    synchronized double queuedSeconds() {
        return ((startedNanos == 0 ? (state.terminal() ? finishedNanos : System.nanoTime()) : startedNanos) - createdNanos) / 1e9;
    }

    boolean cancelRequested() {
        return cancelRequested;
    }

    /** Asks for cancellation; the scheduler acts on it before its next step. False when the job had already ended. */
    synchronized boolean requestCancel(String reason) {
        if (state.terminal()) return false;
        if (!cancelRequested) {
            cancelRequested = true;
            cancelReason = reason;
        }
        return true;
    }

    synchronized void running() {
        if (state == State.QUEUED) {
            state = State.RUNNING;
            startedNanos = System.nanoTime();
        }
    }

    synchronized void progress(int step, float sigma) {
        this.step = step;
        this.sigma = sigma;
    }

    /** Ends the job once: later calls are ignored (returns false). */
    boolean succeed(List<Image> images) {
        synchronized (this) {
            if (state.terminal()) return false;
            this.images = List.copyOf(images);
            end(State.SUCCEEDED);
        }
        done.complete(this);
        return true;
    }

    boolean fail(ApiException e) {
        synchronized (this) {
            if (state.terminal()) return false;
            this.error = e;
            end(State.FAILED);
        }
        done.complete(this);
        return true;
    }

    boolean cancel(String reason) {
        synchronized (this) {
            if (state.terminal()) return false;
            if (cancelReason == null) cancelReason = reason;
            cancelRequested = true;
            end(State.CANCELLED);
        }
        done.complete(this);
        return true;
    }

    private void end(State s) {
        state = s;
        finishedNanos = System.nanoTime();
        if (startedNanos == 0) startedNanos = finishedNanos;
    }

    /** Waits up to {@code millis} for the terminal state. */
    boolean await(long millis) throws InterruptedException {
        try {
            done.get(millis, TimeUnit.MILLISECONDS);
            return true;
        } catch (java.util.concurrent.TimeoutException e) {
            return false;
        } catch (java.util.concurrent.ExecutionException e) {
            return true;
        }
    }
}
