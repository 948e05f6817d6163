package io.mmdit4j.server;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.mmdit4j.image.PngImages;
import io.mmdit4j.pipeline.Denoised;
import io.mmdit4j.pipeline.GenerationResult;
import io.mmdit4j.pipeline.GenerationSettings;
import io.mmdit4j.pipeline.InsufficientMemoryException;
import io.mmdit4j.pipeline.InvalidRequestException;
import io.mmdit4j.pipeline.Pipeline;
import io.mmdit4j.pipeline.RowStepper;
import io.mmdit4j.pipeline.UnsupportedOptionException;
import io.mmdit4j.sampling.NonFiniteException;
import io.mmdit4j.sampling.StepListener;

import java.awt.image.BufferedImage;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The one thread that owns the pipeline. Requests wait in a bounded queue (full: 429); between two denoising steps the
 * scheduler drops cancelled requests, admits queued ones while the batch has room ({@code maxBatch} images) and their
 * batch key matches the running batch (same size and text length: {@link RowStepper#batchKey}), encoding their prompts
 * there, then steps every running request in one forward, each at its own step, and decodes those that are done. The
 * queue is first come, first served: a request whose key differs from the running batch waits (and holds those behind
 * it) until the batch has drained, so no request starves. Finished requests are decoded (together, when they finish at
 * the same step) on a thread of their own and their PNGs encoded on a third, so the batch keeps stepping meanwhile. Families without row stepping run one request at a time, whole: denoised on this thread, decoded on the decode thread while the next request denoises ({@link Pipeline#denoise}, {@link Pipeline#decode}).
 */
final class Scheduler implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(Scheduler.class.getName());

    private final Pipeline pipeline;
    private final RowStepper stepper;
    private final int maxBatch;
    private final int capacity;
    private final ServerMetrics metrics;
    private final Events events;
    private final Results results;
    private final Deque<Job> queue = new ArrayDeque<>();
    private final Map<String, Job> jobs = new ConcurrentHashMap<>();
    private final ExecutorService decoder = Executors.newSingleThreadExecutor(Threads.named("mmdit-decode"));
    /** Finished requests waiting for the decode thread; it takes all that wait (up to {@link #DECODE_IMAGES}) as one VAE batch. */
    private final List<Active> toDecode = new ArrayList<>();
    private static final int DECODE_IMAGES = 8;
    private final ExecutorService encoder = Executors.newSingleThreadExecutor(Threads.named("mmdit-png"));
    private final Thread thread;
    private volatile int activeImages;
    private boolean accepting = true;          // guarded by queue
    private volatile long stopDeadline = Long.MAX_VALUE; // nanoTime after which running requests are cancelled
    private volatile boolean stopping;

    /** Where finished jobs are kept for their clients (bounded in count and age). */
    interface Results {
        void finished(Job job);
    }

    Scheduler(Pipeline pipeline, int maxBatch, int capacity, ServerMetrics metrics, Events events, Results results) {
        if (maxBatch < 1 || capacity < 1) throw new IllegalArgumentException("max batch " + maxBatch + ", queue " + capacity);
        this.pipeline = pipeline;
        this.stepper = pipeline.rowStepper();
        this.maxBatch = maxBatch;
        this.capacity = capacity;
        this.metrics = metrics;
        this.events = events;
        this.results = results;
        this.thread = Threads.named("mmdit-scheduler").newThread(this::run);
        thread.start();
    }

    /** Whether requests share forwards (continuous batching) or run whole, one at a time. */
    boolean continuousBatching() {
        return stepper.supported();
    }

    RowStepper stepper() {
        return stepper;
    }

    int queued() {
        synchronized (queue) {
            return queue.size();
        }
    }

    int activeImages() {
        return activeImages;
    }

    /** Accepts a resolved request, or refuses it: 429 when the queue is full, 503 while shutting down. */
    Job submit(GenerationSettings s) {
        Job job = new Job(s);
        synchronized (queue) {
            if (!accepting) throw new ApiException(503, "shutting_down", "the server is shutting down");
            if (queue.size() >= capacity) {
                metrics.requests("rejected").increment();
                throw new ApiException(429, "queue_full", "the queue is full (" + capacity + " requests waiting, --queue): try again later");
            }
            jobs.put(job.id, job);
            queue.addLast(job);
            queue.notifyAll();
        }
        return job;
    }

    Job job(String id) {
        return jobs.get(id);
    }

    /** Forgets a finished job (its results expired). */
    void forget(Job job) {
        jobs.remove(job.id, job);
    }

    /** Cancels a job: at once when it is queued, before the next step when it runs. False when it had already ended. */
    boolean cancel(Job job, String reason) {
        synchronized (queue) {
            if (queue.remove(job)) {
                cancelled(job, reason);
                return true;
            }
        }
        boolean asked = job.requestCancel(reason);
        synchronized (queue) {
            queue.notifyAll();
        }
        return asked;
    }

    // ------------------------------------------------------------------------------------------ the scheduler thread

    private record Active(Job job, RowStepper.Rows rows) {}

    private void run() {
        List<Active> active = new ArrayList<>();
        try {
            while (true) {
                dropCancelled(active);
                if (stopping && System.nanoTime() > stopDeadline) {
                    for (Active a : active) end(a, () -> cancelled(a.job, "the server is shutting down"));
                    active.clear();
                }
                if (stepper.supported()) admit(active);
                activeImages = active.stream().mapToInt(a -> a.job.images()).sum();
                if (active.isEmpty()) {
                    if (stopping && queued() == 0) return;
                    Job next = next();
                    if (next != null && !stepper.supported()) runWhole(next);
                    continue;
                }
                step(active);
            }
        } catch (Throwable t) {
            LOG.log(Level.SEVERE, "the scheduler stopped on an unexpected error", t);
            ApiException e = new ApiException(500, "server_error", "the scheduler stopped: " + t);
            for (Active a : active) end(a, () -> failed(a.job, e));
            synchronized (queue) {
                accepting = false;
                for (Job j : queue) failed(j, e);
                queue.clear();
            }
        } finally {
            for (Active a : active) a.rows.close();
            activeImages = 0;
        }
    }

    /** Waits a little for work; returns the head of the queue (without removing it for row stepping). */
    private Job next() throws InterruptedException {
        synchronized (queue) {
            if (queue.isEmpty()) queue.wait(200);
            if (queue.isEmpty()) return null;
            return stepper.supported() ? queue.peekFirst() : queue.pollFirst();
        }
    }

    private void dropCancelled(List<Active> active) {
        for (Iterator<Active> it = active.iterator(); it.hasNext(); ) {
            Active a = it.next();
            if (a.job.cancelRequested()) {
                it.remove();
                end(a, () -> cancelled(a.job, a.job.cancelReason()));
            }
        }
    }

    private void admit(List<Active> active) {
        int images = active.stream().mapToInt(a -> a.job.images()).sum();
        Object key = active.isEmpty() ? null : active.get(0).rows.batchKey();
        while (!stopping) {
            Job head;
            synchronized (queue) {
                head = queue.peekFirst();
                if (head == null) return;
                if (head.cancelRequested()) {
                    queue.pollFirst();
                    cancelled(head, head.cancelReason());
                    continue;
                }
                if (key != null && !key.equals(stepper.batchKey(head.settings))) return; // first come, first served: the batch drains first
                if (images + head.images() > maxBatch) return;
                queue.pollFirst();
            }
            RowStepper.Rows rows;
            try {
                rows = stepper.start(head.settings);
            } catch (RuntimeException e) {
                failed(head, error(e));
                continue;
            }
            metrics.textEncode(rows.textNanos());
            head.running();
            active.add(new Active(head, rows));
            images += head.images();
            key = rows.batchKey();
            events.publish(head, "state", Json.state(head), null, false);
        }
    }

    private void step(List<Active> active) {
        List<RowStepper.Rows> rows = new ArrayList<>(active.size());
        int images = 0;
        for (Active a : active) {
            rows.add(a.rows);
            images += a.job.images();
        }
        long t0 = System.nanoTime();
        try {
            stepper.step(rows);
        } catch (RuntimeException e) {
            ApiException err = error(e);
            for (Active a : active) end(a, () -> failed(a.job, err));
            active.clear();
            return;
        }
        metrics.batch(images, System.nanoTime() - t0);
        List<Active> done = new ArrayList<>();
        for (Iterator<Active> it = active.iterator(); it.hasNext(); ) {
            Active a = it.next();
            a.job.progress(a.rows.step(), a.rows.sigma());
            if (a.rows.failure() != null) {
                it.remove();
                end(a, () -> failed(a.job, error(a.rows.failure())));
            } else if (a.rows.done()) {
                it.remove();
                done.add(a);
            } else {
                publishStep(a.job, a.rows);
            }
        }
        if (!done.isEmpty()) {
            synchronized (toDecode) {
                toDecode.addAll(done);
            }
            try {
                decoder.execute(this::decodeWaiting); // the VAE runs while the batch goes on stepping
            } catch (java.util.concurrent.RejectedExecutionException e) {
                decodeWaiting();
            }
        }
    }

    /**
     * On the decode thread: everything finished since the last decode, grouped by batch key and up to
     * {@link #DECODE_IMAGES} images a batch (a busy VAE thus decodes several requests at once: its fixed costs are shared).
     */
    private void decodeWaiting() {
        while (true) {
            List<Active> group = new ArrayList<>();
            synchronized (toDecode) {
                if (toDecode.isEmpty()) return;
                Object key = toDecode.get(0).rows.batchKey();
                int images = 0;
                for (Iterator<Active> it = toDecode.iterator(); it.hasNext(); ) {
                    Active a = it.next();
                    if (!a.rows.batchKey().equals(key) || (images > 0 && images + a.job.images() > DECODE_IMAGES)) continue;
                    group.add(a);
                    images += a.job.images();
                    it.remove();
                }
            }
            finish(group);
        }
    }

    private void publishStep(Job job, RowStepper.Rows rows) {
        if (job.subscribers.isEmpty()) return;
        String preview = null;
        if (Events.wantsPreviews(job)) {
            try {
                BufferedImage img = stepper.preview(rows, 0);
                if (img != null) preview = Json.step(job, PngImages.encode(img, Map.of()));
            } catch (RuntimeException e) {
                LOG.log(Level.FINE, "preview failed", e);
            }
        }
        events.publish(job, "step", Json.step(job, null), preview, false);
    }

    /** Decodes the requests that finished at this step in one VAE batch (they share the batch key), then delivers each. */
    private void finish(List<Active> done) {
        List<GenerationResult> results;
        long t0 = System.nanoTime();
        try {
            results = stepper.finish(done.stream().map(Active::rows).toList());
        } catch (RuntimeException e) {
            ApiException err = error(e);
            for (Active a : done) end(a, () -> failed(a.job, err));
            return;
        }
        long each = (System.nanoTime() - t0) / done.size();
        for (int k = 0; k < done.size(); k++) {
            metrics.decode(each);
            deliver(done.get(k).job, results.get(k));
        }
    }

    /** Hands the images (8-bit, with their records) to the PNG thread and closes the result. */
    private void deliver(Job job, GenerationResult r) {
        List<BufferedImage> imgs = new ArrayList<>();
        List<Map<String, String>> meta = new ArrayList<>();
        GenerationSettings s;
        try (r) {
            s = r.settings();
            for (int i = 0; i < r.count(); i++) {
                imgs.add(r.image(i));
                meta.add(s.metadata(i));
            }
        } catch (RuntimeException e) {
            failed(job, error(e));
            return;
        }
        try {
            encoder.execute(() -> {
                try {
                    List<Job.Image> out = new ArrayList<>();
                    for (int i = 0; i < imgs.size(); i++) {
                        ObjectNode record = s.forImage(i).toJson();
                        out.add(new Job.Image(PngImages.encode(imgs.get(i), meta.get(i)), s.seed(i), record));
                    }
                    if (job.cancelRequested()) { // asked for while it was decoded: nobody is waiting for these images
                        cancelled(job, job.cancelReason());
                        return;
                    }
                    if (job.succeed(out)) {
                        metrics.succeeded(out.size(), job.seconds());
                        events.publish(job, "done", Json.state(job), null, true);
                        results.finished(job);
                    }
                } catch (RuntimeException e) {
                    failed(job, error(e));
                }
            });
        } catch (java.util.concurrent.RejectedExecutionException e) {
            failed(job, new ApiException(503, "shutting_down", "the server is shutting down"));
        }
    }

    /** A family without row stepping: the request alone, whole, cancellable between its steps. */
    private void runWhole(Job job) {
        if (job.cancelRequested()) {
            cancelled(job, job.cancelReason());
            return;
        }
        job.running();
        activeImages = job.images();
        events.publish(job, "state", Json.state(job), null, false);
        GenerationResult r;
        StepListener listener = st -> {
            job.progress(st.index() + 1, st.sigma());
            metrics.batch(job.images(), st.elapsedNanos());
            if (!job.subscribers.isEmpty()) events.publish(job, "step", Json.step(job, null), null, false);
            return !job.cancelRequested() && !(stopping && System.nanoTime() > stopDeadline);
        };
        try {
            if (pipeline.runsInOneBatch(job.settings)) { // the VAE decodes on the decode thread while the next request denoises
                Denoised d = pipeline.denoise(job.settings, listener);
                decodeWhole(job, d);
                return;
            }
            r = pipeline.generate(job.settings, listener, null);
        } catch (CancellationException e) {
            cancelled(job, job.cancelReason() == null ? "the server is shutting down" : job.cancelReason());
            return;
        } catch (RuntimeException e) {
            failed(job, error(e));
            return;
        } finally {
            activeImages = 0;
        }
        deliver(job, r);
    }

    /** The decode of a whole request on the decode thread (inline when it no longer takes work); {@code d} is closed either way. */
    private void decodeWhole(Job job, Denoised d) {
        Runnable decode = () -> {
            GenerationResult r;
            long t0 = System.nanoTime();
            try (d) {
                if (job.cancelRequested()) {
                    cancelled(job, job.cancelReason());
                    return;
                }
                r = pipeline.decode(d);
            } catch (RuntimeException e) {
                failed(job, error(e));
                return;
            }
            metrics.decode(System.nanoTime() - t0);
            deliver(job, r);
        };
        try {
            decoder.execute(decode);
        } catch (java.util.concurrent.RejectedExecutionException e) {
            decode.run();
        }
    }

    private void end(Active a, Runnable outcome) {
        try {
            a.rows.close();
        } finally {
            outcome.run();
        }
    }

    private void cancelled(Job job, String reason) {
        if (job.cancel(reason == null ? "cancelled" : reason)) {
            metrics.requests("cancelled").increment();
            events.publish(job, "cancelled", Json.state(job), null, true);
            results.finished(job);
        }
    }

    private void failed(Job job, ApiException e) {
        if (job.fail(e)) {
            metrics.requests("failed").increment();
            events.publish(job, "error", Json.state(job), null, true);
            results.finished(job);
        }
    }

    /** An engine error as the API's error: bad settings 400, too little memory 507, NaN results 422, others 500. */
    static ApiException error(Throwable e) {
        if (e instanceof ApiException a) return a;
        if (e instanceof InsufficientMemoryException) return new ApiException(507, "insufficient_memory", e.getMessage());
        if (e instanceof UnsupportedOptionException) return new ApiException(400, "unsupported_option", e.getMessage());
        if (e instanceof InvalidRequestException) return new ApiException(400, "invalid_request", e.getMessage());
        if (e instanceof NonFiniteException) return new ApiException(422, "non_finite", e.getMessage());
        LOG.log(Level.WARNING, "generation failed", e);
        return new ApiException(500, "generation_failed", String.valueOf(e.getMessage()));
    }

    // ------------------------------------------------------------------------------------------ shutdown

    /**
     * Stops accepting, cancels what is queued, lets running requests finish for up to {@code grace} (then cancels them),
     * and stops every thread of the scheduler. The pipeline stays open (its owner closes it).
     */
    void shutdown(Duration grace) {
        List<Job> dropped;
        synchronized (queue) {
            accepting = false;
            dropped = new ArrayList<>(queue);
            queue.clear();
            stopDeadline = System.nanoTime() + grace.toNanos();
            stopping = true;
            queue.notifyAll();
        }
        dropped.forEach(j -> cancelled(j, "the server is shutting down"));
        try {
            thread.join(grace.toMillis() + 60_000);
            if (thread.isAlive()) {
                thread.interrupt();
                thread.join(10_000);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        for (ExecutorService e : List.of(decoder, encoder)) { // decodes first: they hand their images to the encoder
            e.shutdown();
            try {
                if (!e.awaitTermination(60, TimeUnit.SECONDS)) e.shutdownNow();
            } catch (InterruptedException ie) {
                e.shutdownNow();
                Thread.currentThread().interrupt();
            }
        }
        stepper.close();
    }

    @Override
    public void close() {
        shutdown(Duration.ZERO);
    }
}
