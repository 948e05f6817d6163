package io.mmdit4j.pipeline;

import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Supplier;

/**
 * The text conditionings of recent prompts, shared by the requests in flight that use them (row stepping,
 * {@link RowStepper}): one cache per loaded model, keyed by what the family's encoding depends on
 * ({@link FamilyPipeline#encodingKey}: prompt, negative prompt, text length). Entries are reference-counted: a
 * {@link Lease} keeps its entry alive, and only entries nobody uses are dropped (least recently used first) once the
 * cache holds more than its capacity. Not thread-safe (its owner, the row stepper, is used by one thread at a time).
 */
final class PromptEmbeddingCache<C extends AutoCloseable> implements AutoCloseable {
    private final int capacity;
    private final Map<Object, Entry<C>> entries = new LinkedHashMap<>(16, 0.75f, true);
    private long hits;
    private long misses;
    private boolean closed;

    private static final class Entry<C> {
        final C value;
        int users;
        boolean dropped; // out of the map: closed when its last user leaves

        Entry(C value) {
            this.value = value;
        }
    }

    PromptEmbeddingCache(int capacity) {
        if (capacity < 0) throw new IllegalArgumentException("capacity " + capacity);
        this.capacity = capacity;
    }

    /** A use of the conditioning of {@code key}, encoded by {@code encode} when it is not cached; null key: not cached. */
    Lease<C> acquire(Object key, Supplier<C> encode) {
        if (closed) throw new IllegalStateException("the prompt-embedding cache is closed");
        Entry<C> e = key == null ? null : entries.get(key);
        if (e != null) {
            hits++;
        } else {
            misses++;
            e = new Entry<>(encode.get());
            if (key == null || capacity == 0) e.dropped = true;
            else entries.put(key, e);
        }
        e.users++;
        trim();
        return new Lease<>(this, e);
    }

    long hits() {
        return hits;
    }

    long misses() {
        return misses;
    }

    int size() {
        return entries.size();
    }

    /** Drops unused entries beyond the capacity, least recently used first. */
    private void trim() {
        Iterator<Entry<C>> it = entries.values().iterator();
        int excess = entries.size() - capacity;
        while (excess > 0 && it.hasNext()) {
            Entry<C> e = it.next();
            if (e.users > 0) continue;
            it.remove();
            closeQuietly(e.value);
            excess--;
        }
    }

    private void release(Entry<C> e) {
        if (--e.users > 0) return;
        if (e.dropped) closeQuietly(e.value);
        else trim();
    }

    private static void closeQuietly(AutoCloseable c) {
        try {
            c.close();
        } catch (Exception e) {
            throw e instanceof RuntimeException r ? r : new IllegalStateException(e);
        }
    }

    /** Closes the unused entries; entries still leased close with their last lease. */
    @Override
    public void close() {
        closed = true;
        for (Entry<C> e : entries.values()) {
            e.dropped = true;
            if (e.users == 0) closeQuietly(e.value);
        }
        entries.clear();
    }

    /** One user's hold on a cached conditioning; close it when the request is done. */
    static final class Lease<C extends AutoCloseable> implements AutoCloseable {
        private final PromptEmbeddingCache<C> cache;
        private final Entry<C> entry;
        private boolean released;

        private Lease(PromptEmbeddingCache<C> cache, Entry<C> entry) {
            this.cache = cache;
            this.entry = entry;
        }

        C get() {
            if (released) throw new IllegalStateException("lease released");
            return entry.value;
        }

        @Override
        public void close() {
            if (released) return;
            released = true;
            cache.release(entry);
        }
    }
}
