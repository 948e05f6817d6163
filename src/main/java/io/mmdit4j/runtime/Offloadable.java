package io.mmdit4j.runtime;

import java.util.Objects;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * A model part that is either resident (loaded once, kept until {@link #close}) or offloaded (loaded for each use and
 * released right after it, or kept between {@link #acquire} and {@link #release}): how a pipeline whose parts do not all
 * fit in memory runs its text encoders one at a time and releases them before the transformer loads. Weights are views
 * of memory-mapped files, so releasing a part unmaps them and lets the OS drop its pages.
 *
 * @param <T> the part (a text encoder, a transformer)
 */
public final class Offloadable<T extends AutoCloseable> implements AutoCloseable {
    private final String name;
    private final Supplier<T> loader;
    private final boolean resident;
    private T loaded;
    private int loads;

    private Offloadable(String name, Supplier<T> loader, boolean resident) {
        this.name = Objects.requireNonNull(name, "name");
        this.loader = Objects.requireNonNull(loader, "loader");
        this.resident = resident;
    }

    /** Loaded now and kept. */
    public static <T extends AutoCloseable> Offloadable<T> resident(String name, Supplier<T> loader) {
        Offloadable<T> o = new Offloadable<>(name, loader, true);
        o.acquire();
        return o;
    }

    /** Loaded when used, released after each use (or at {@link #release}). */
    public static <T extends AutoCloseable> Offloadable<T> offloaded(String name, Supplier<T> loader) {
        return new Offloadable<>(name, loader, false);
    }

    /** {@link #resident} or {@link #offloaded}. */
    public static <T extends AutoCloseable> Offloadable<T> of(String name, Supplier<T> loader, boolean offload) {
        return offload ? offloaded(name, loader) : resident(name, loader);
    }

    public String name() { return name; }

    public boolean isResident() { return resident; }

    /** Whether the part is in memory now. */
    public synchronized boolean isLoaded() { return loaded != null; }

    /** How many times the part was loaded (an offloaded part: once per use). */
    public synchronized int loads() { return loads; }

    /** The part, loaded if it is not; it stays until {@link #release} (an offloaded part) or {@link #close}. */
    public synchronized T acquire() {
        if (loaded == null) {
            loaded = loader.get();
            loads++;
        }
        return loaded;
    }

    /** Releases an offloaded part now (a resident one stays). */
    public synchronized void release() {
        if (resident || loaded == null) return;
        T t = loaded;
        loaded = null;
        closeQuietly(t);
    }

    /** Runs {@code use} on the part; an offloaded part that was not acquired before is released afterwards. */
    public synchronized <R> R use(Function<T, R> use) {
        boolean held = loaded != null;
        T t = acquire();
        try {
            return use.apply(t);
        } finally {
            if (!held) release();
        }
    }

    @Override
    public synchronized void close() {
        T t = loaded;
        loaded = null;
        if (t != null) closeQuietly(t);
    }

    private void closeQuietly(T t) {
        try {
            t.close();
        } catch (Exception e) {
            throw new IllegalStateException("closing " + name + " failed", e);
        }
    }
}
