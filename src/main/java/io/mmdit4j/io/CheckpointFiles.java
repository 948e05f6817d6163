package io.mmdit4j.io;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * The checkpoint files a model was loaded from, as they were when opened, and how their tensors were read:
 * memory-mapped (the default: zero copy, the weights stay views of the files' pages) or read into memory (the model
 * then no longer depends on the files).
 *
 * <p>A loader runs inside {@link #load}: every {@link SafetensorsFile} opened meanwhile on this thread reads its tensors
 * in this mode and is listed here, so the pipeline can check with one {@code stat} per file that none changed before
 * each generation ({@link #requireUnchanged}). A thread-local scope, because the families open their files deep inside
 * their loaders (transformer, VAE, text encoders, LoRAs); it spares every loader a parameter.
 */
public final class CheckpointFiles {
    private static final ThreadLocal<CheckpointFiles> LOADING = new ThreadLocal<>();

    private final boolean memoryMapped;
    private final Map<Path, FileSnapshot> files = new LinkedHashMap<>();

    public CheckpointFiles(boolean memoryMapped) {
        this.memoryMapped = memoryMapped;
    }

    public boolean memoryMapped() {
        return memoryMapped;
    }

    /** Runs {@code loader} with this as the thread's loading scope (scopes nest; the inner one wins). */
    public <T> T load(Supplier<T> loader) {
        CheckpointFiles outer = LOADING.get();
        LOADING.set(this);
        try {
            return loader.get();
        } finally {
            if (outer == null) LOADING.remove();
            else LOADING.set(outer);
        }
    }

    /** Whether a file opened now on this thread maps its tensors: its loading scope's mode, else mapped. */
    public static boolean mappingNow() {
        CheckpointFiles scope = LOADING.get();
        return scope == null || scope.memoryMapped;
    }

    /**
     * The snapshot of {@code file} after its header was read, which must equal {@code before} (taken before the read) and
     * have the size the header implies ({@code expectedSize}); listed in the thread's loading scope. A file still being
     * written (a download) fails here instead of later.
     */
    public static FileSnapshot openedUnchanged(Path file, FileSnapshot before, long expectedSize) {
        FileSnapshot after = FileSnapshot.of(file);
        String change = before.changeTo(after);
        if (change == null && after.size() != expectedSize) change = "size " + expectedSize + " -> " + after.size() + " bytes";
        if (change != null) {
            throw new ModelFormatException(file + ": the file changed while its header was read (" + change
                    + "): open it again once it is complete");
        }
        opened(after);
        return after;
    }

    /** Lists a file opened on this thread inside a {@link #load}. */
    static void opened(FileSnapshot file) {
        CheckpointFiles scope = LOADING.get();
        if (scope != null) scope.add(file);
    }

    /** A path opened twice during one load (e.g. for its config, then its weights) must be the same file both times. */
    private synchronized void add(FileSnapshot file) {
        FileSnapshot before = files.putIfAbsent(file.file().toAbsolutePath().normalize(), file);
        String change = before == null ? null : before.changeTo(file);
        if (change != null) {
            throw new ModelFormatException(file.file() + ": the checkpoint changed on disk while the model was loading (" + change
                    + "): load it again once the file is complete");
        }
    }

    /** The files opened, in order. */
    public synchronized List<FileSnapshot> files() {
        return new ArrayList<>(files.values());
    }

    /**
     * Fails with a {@link ModelFormatException} when a memory-mapped file changed since it was opened, before anything
     * reads a page of it: a truncated file would crash the process (SIGBUS), a rewritten one feed the model a mix of old
     * and new weights. Files read into memory are not checked: the model no longer depends on them.
     */
    public synchronized void requireUnchanged() {
        if (!memoryMapped) return;
        for (FileSnapshot f : files.values()) f.requireUnchanged();
    }
}
