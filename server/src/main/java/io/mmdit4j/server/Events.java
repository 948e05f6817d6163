package io.mmdit4j.server;

import io.javalin.http.sse.SseClient;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.BiConsumer;

/**
 * Server-Sent Events of the jobs: the scheduler publishes (a state change, each step with an optional latent preview, the
 * result) and one dispatch thread writes to the subscribers, so a slow client never holds the scheduler. Every second each
 * open stream gets a comment line: that write is how a client that went away is noticed (it is then dropped, and its job
 * cancelled when it subscribed with {@code cancel_on_disconnect}).
 */
final class Events implements AutoCloseable {
    /** One open event stream of one job. */
    static final class Subscriber {
        final Job job;
        final SseClient client;
        final boolean previews;
        final boolean cancelOnDisconnect;

        Subscriber(Job job, SseClient client, boolean previews, boolean cancelOnDisconnect) {
            this.job = job;
            this.client = client;
            this.previews = previews;
            this.cancelOnDisconnect = cancelOnDisconnect;
        }
    }

    private final ExecutorService dispatch = Executors.newSingleThreadExecutor(Threads.named("mmdit-events"));
    private final ScheduledExecutorService pinger = Executors.newSingleThreadScheduledExecutor(Threads.named("mmdit-events-ping"));
    private final Map<Subscriber, Boolean> open = new ConcurrentHashMap<>();
    private final BiConsumer<Job, String> cancel;

    /** @param cancel cancels a job whose subscriber went away (with a reason) */
    Events(BiConsumer<Job, String> cancel) {
        this.cancel = cancel;
        pinger.scheduleWithFixedDelay(() -> dispatch.execute(this::ping), 1, 1, TimeUnit.SECONDS);
    }

    /** Subscribes and sends the job's current state first (and its end, if it has ended: the stream then closes). */
    void subscribe(Subscriber s, String snapshotEvent, String snapshot, boolean terminal) {
        s.client.onClose(() -> gone(s));
        open.put(s, Boolean.TRUE);
        s.job.subscribers.add(s);
        execute(() -> {
            send(s, snapshotEvent, snapshot);
            if (terminal) s.client.close();
        });
    }

    /** Sends {@code event} to the job's subscribers ({@code previewData} instead of {@code data} to those who asked for previews). */
    void publish(Job job, String event, String data, String previewData, boolean last) {
        if (job.subscribers.isEmpty()) return;
        execute(() -> {
            for (Subscriber s : job.subscribers) {
                send(s, event, s.previews && previewData != null ? previewData : data);
                if (last) s.client.close();
            }
        });
    }

    /** Whether some subscriber of {@code job} wants latent previews (they cost a little on the scheduler thread). */
    static boolean wantsPreviews(Job job) {
        for (Subscriber s : job.subscribers) if (s.previews) return true;
        return false;
    }

    private void execute(Runnable r) {
        try {
            dispatch.execute(r);
        } catch (java.util.concurrent.RejectedExecutionException e) {
            // shutting down: streams are closed by close()
        }
    }

    private static void send(Subscriber s, String event, String data) {
        if (s.client.terminated()) return;
        try {
            s.client.sendEvent(event, data);
        } catch (RuntimeException e) {
            s.client.close();
        }
    }

    private void ping() {
        for (Subscriber s : open.keySet()) {
            if (s.client.terminated()) continue;
            try {
                s.client.sendComment("ping");
            } catch (RuntimeException e) {
                s.client.close();
            }
        }
    }

    private void gone(Subscriber s) {
        open.remove(s);
        s.job.subscribers.remove(s);
        if (s.cancelOnDisconnect && !s.job.state().terminal()) cancel.accept(s.job, "the client's event stream closed");
    }

    int openStreams() {
        return open.size();
    }

    /** Closes every stream and stops both threads. */
    @Override
    public void close() {
        pinger.shutdownNow();
        dispatch.execute(() -> open.keySet().forEach(s -> s.client.close()));
        dispatch.shutdown();
        try {
            if (!dispatch.awaitTermination(5, TimeUnit.SECONDS)) dispatch.shutdownNow();
            pinger.awaitTermination(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            dispatch.shutdownNow();
            Thread.currentThread().interrupt();
        }
    }
}
