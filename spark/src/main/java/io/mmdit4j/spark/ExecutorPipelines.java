package io.mmdit4j.spark;

import io.mmdit4j.pipeline.LoadOptions;
import io.mmdit4j.pipeline.Pipeline;
import io.mmdit4j.pipeline.Pipelines;
import io.mmdit4j.pipeline.PreparedModel;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Torch;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.Locale;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The models of this JVM: one pipeline per (model, load options, device), found and checked on first use
 * ({@link #get}: headers only), its weights loaded lazily by the first batch that needs them ({@link Shared#pipeline}),
 * then kept for every later partition and task of the JVM. In local mode Spark's task threads share the JVM and so the
 * pipeline: they take turns generating ({@link Shared#turn}), never load it once per thread.
 */
public final class ExecutorPipelines {
    private static final Logger LOG = LoggerFactory.getLogger(ExecutorPipelines.class);
    private static final ConcurrentHashMap<Key, Shared> MODELS = new ConcurrentHashMap<>();
    private static final AtomicInteger LOADS = new AtomicInteger();
    private static volatile boolean threadsSet;

    private ExecutorPipelines() {}

    record Key(String model, String dtype, String device, boolean memoryMapped, boolean checkMemory) {}

    /** A pipeline and how long getting it took to load (0 when it was loaded already). */
    public record Loaded(Pipeline pipeline, double loadSeconds) {}

    /** One model of this JVM. */
    public static final class Shared {
        private final Key key;
        private final PreparedModel prepared;
        /** Held while generating: the pipeline serves one generation at a time (fair: tasks take turns in order). */
        final ReentrantLock turn = new ReentrantLock(true);
        private Pipeline pipeline;
        private RuntimeException loadFailure;
        private double loadSeconds;
        private int loads;

        private Shared(Key key, PreparedModel prepared) {
            this.key = key;
            this.prepared = prepared;
        }

        public PreparedModel prepared() {
            return prepared;
        }

        /** The loaded pipeline; the first call loads it (once per JVM; a failure is remembered, not retried per batch). */
        public Pipeline pipeline() {
            return acquire().pipeline();
        }

        /** The pipeline, and the seconds this call spent loading it (0 unless this call loaded it). */
        public synchronized Loaded acquire() {
            if (pipeline != null) return new Loaded(pipeline, 0);
            if (loadFailure != null) throw new IllegalStateException("the model failed to load on this executor: " + loadFailure.getMessage(), loadFailure);
            long t0 = System.nanoTime();
            try {
                pipeline = prepared.load();
            } catch (RuntimeException e) {
                loadFailure = e;
                throw e;
            }
            loadSeconds = (System.nanoTime() - t0) / 1e9;
            LOADS.incrementAndGet();
            loads++;
            LOG.info(String.format(Locale.ROOT, "loaded %s on %s in %.1f s", key.model(), key.device(), loadSeconds));
            return new Loaded(pipeline, loadSeconds);
        }

        /** Whether the weights are loaded. */
        public synchronized boolean loaded() {
            return pipeline != null;
        }

        public synchronized double loadSeconds() {
            return loadSeconds;
        }
    }

    /** The model of {@code config} on {@code device} (found and checked now; weights loaded by {@link Shared#pipeline}). */
    public static Shared get(JobConfig config, String device) {
        setThreads(config.threads());
        Key key = new Key(config.model(), config.dtype(), device, config.memoryMapped(), config.checkMemory());
        return MODELS.computeIfAbsent(key, k -> {
            LoadOptions.Builder o = LoadOptions.builder().device(DeviceSpec.parse(device)).memoryMapped(k.memoryMapped()).checkMemory(k.checkMemory());
            if (k.dtype() != null) o.dtype(DType.parse(k.dtype()));
            return new Shared(k, Pipelines.prepare(k.model(), o.build()));
        });
    }

    private static synchronized void setThreads(int threads) {
        if (threads > 0 && !threadsSet) {
            Torch.setThreads(threads);
            threadsSet = true;
        }
    }

    /** How many times this JVM has loaded {@code model} (with any options, on any device). */
    public static int loads(String model) {
        int n = 0;
        for (Shared s : MODELS.values()) {
            if (s.key.model().equals(model)) {
                synchronized (s) {
                    n += s.loads;
                }
            }
        }
        return n;
    }

    /** Pipelines this JVM has loaded so far (all models). */
    public static int loads() {
        return LOADS.get();
    }
}
