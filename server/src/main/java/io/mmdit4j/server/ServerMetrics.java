package io.mmdit4j.server;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmThreadMetrics;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.function.Supplier;

/**
 * The server's Prometheus metrics (Micrometer): queue depth, rows in the running batch, the batch size of every forward
 * (a histogram with one bucket per size), step latency, request latency, text encoding and decode times, images made (a
 * counter, and images/s over the last minute), requests by outcome, the prompt-embedding cache, the process's resident
 * memory and the JVM's threads and memory.
 */
final class ServerMetrics {
    final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final DistributionSummary batchSize;
    private final Timer step;
    private final Timer latency;
    private final Timer textEncode;
    private final Timer decode;
    private final Counter images;
    private final Deque<Long> recentImages = new ArrayDeque<>(); // completion times (nanos) of the last minute's images
    private static final long WINDOW_NANOS = 60_000_000_000L;

    ServerMetrics(int maxBatch, Supplier<Number> queueDepth, Supplier<Number> activeImages, Supplier<Number> cacheHits, Supplier<Number> cacheMisses) {
        Gauge.builder("mmdit_queue_depth", () -> queueDepth.get().doubleValue()).description("requests waiting for a place in the batch").register(registry);
        Gauge.builder("mmdit_active_images", () -> activeImages.get().doubleValue()).description("images in the running batch").register(registry);
        double[] buckets = new double[maxBatch];
        for (int i = 0; i < maxBatch; i++) buckets[i] = i + 1;
        batchSize = DistributionSummary.builder("mmdit_batch_images").description("images per transformer forward (batch size)")
                .serviceLevelObjectives(buckets).register(registry);
        step = Timer.builder("mmdit_step").description("wall time of one denoising step of the whole batch").publishPercentileHistogram()
                .minimumExpectedValue(Duration.ofMillis(1)).maximumExpectedValue(Duration.ofMinutes(5)).register(registry);
        latency = Timer.builder("mmdit_request").description("time from acceptance to result of succeeded requests").publishPercentileHistogram()
                .minimumExpectedValue(Duration.ofMillis(10)).maximumExpectedValue(Duration.ofHours(1)).register(registry);
        textEncode = Timer.builder("mmdit_text_encode").description("text encoding, guidance plan and noise of a request joining the batch").register(registry);
        decode = Timer.builder("mmdit_decode").description("VAE decode of a finished request").register(registry);
        images = Counter.builder("mmdit_images").description("images made").register(registry);
        Gauge.builder("mmdit_images_per_second", this::imagesPerSecond).description("images made per second over the last minute").register(registry);
        FunctionCounter.builder("mmdit_encoding_cache_hits", cacheHits, s -> s.get().doubleValue()).description("prompt encodings reused").register(registry);
        FunctionCounter.builder("mmdit_encoding_cache_misses", cacheMisses, s -> s.get().doubleValue()).description("prompt encodings made").register(registry);
        Gauge.builder("mmdit_process_resident_memory_bytes", ServerMetrics::rss).description("resident set size of the server process (VmRSS)").register(registry);
        // CPU time, which a shared machine's load does not inflate the way it inflates wall time
        FunctionCounter.builder("mmdit_process_cpu_seconds", this, m -> processCpuSeconds()).description("CPU time of the server process, all threads")
                .register(registry);
        new JvmThreadMetrics().bindTo(registry);
        new JvmMemoryMetrics().bindTo(registry);
        for (String outcome : new String[] {"succeeded", "failed", "cancelled", "rejected"}) requests(outcome); // present from the start
    }

    void batch(int imagesInBatch, long stepNanos) {
        batchSize.record(imagesInBatch);
        step.record(Duration.ofNanos(stepNanos));
    }

    void textEncode(long nanos) {
        textEncode.record(Duration.ofNanos(nanos));
    }

    void decode(long nanos) {
        decode.record(Duration.ofNanos(nanos));
    }

    void succeeded(int count, double seconds) {
        images.increment(count);
        latency.record(Duration.ofNanos((long) (seconds * 1e9)));
        requests("succeeded").increment();
        long now = System.nanoTime();
        synchronized (recentImages) {
            for (int i = 0; i < count; i++) recentImages.addLast(now);
        }
    }

    Counter requests(String outcome) {
        return Counter.builder("mmdit_requests").tag("outcome", outcome).description("requests by outcome").register(registry);
    }

    private double imagesPerSecond() {
        long now = System.nanoTime();
        synchronized (recentImages) {
            while (!recentImages.isEmpty() && now - recentImages.peekFirst() > WINDOW_NANOS) recentImages.pollFirst();
            return recentImages.size() / (WINDOW_NANOS / 1e9);
        }
    }

    /** CPU seconds of this process (every thread, native ones included), else NaN. */
    static double processCpuSeconds() {
        java.lang.management.OperatingSystemMXBean os = java.lang.management.ManagementFactory.getOperatingSystemMXBean();
        if (os instanceof com.sun.management.OperatingSystemMXBean sun) {
            long ns = sun.getProcessCpuTime();
            if (ns >= 0) return ns / 1e9;
        }
        return Double.NaN;
    }

    /** VmRSS of this process in bytes (Linux), else NaN. */
    static double rss() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmRSS:")) return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024.0;
            }
        } catch (Exception e) {
            // not Linux
        }
        return Double.NaN;
    }

    String scrape() {
        return registry.scrape();
    }

    void close() {
        registry.close();
    }
}
