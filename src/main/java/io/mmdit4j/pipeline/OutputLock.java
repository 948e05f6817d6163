package io.mmdit4j.pipeline;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Exclusive use of an output folder while files are named and written into it, across threads and processes: two runs
 * writing into {@code outputs/} at once then take numbers one after the other instead of the same one, and a run may
 * delete the {@code .part} files it finds there (no other writer is active, so they are a killed run's leftovers).
 * The lock files live in the temporary folder, not among the outputs: one of {@value #BUCKETS} per user, chosen by the
 * folder's path, so they do not pile up; two folders that share one only take turns writing, which is short.
 */
final class OutputLock implements AutoCloseable {
    /** One per lock file: a JVM may hold a file's lock once, so threads take turns per file, not per folder. */
    private static final ConcurrentHashMap<Integer, ReentrantLock> IN_PROCESS = new ConcurrentHashMap<>();
    static final int BUCKETS = 64;

    private final ReentrantLock local;
    private final FileChannel channel;
    private final FileLock lock;

    private OutputLock(ReentrantLock local, FileChannel channel, FileLock lock) {
        this.local = local;
        this.channel = channel;
        this.lock = lock;
    }

    /** Waits for the folder {@code dir} (which exists) to be free, then holds it until {@link #close}. */
    static OutputLock acquire(Path dir) {
        Path key;
        try {
            key = dir.toRealPath();
        } catch (IOException e) {
            throw new UncheckedIOException(dir + ": " + e.getMessage(), e);
        }
        // String.hashCode is specified, so every JVM picks the same file for a folder
        int bucket = bucket(key);
        // FileLock does not exclude threads of one JVM, and two threads locking one file (two folders of one bucket) would get an
        // OverlappingFileLockException: threads take turns per lock file
        ReentrantLock local = IN_PROCESS.computeIfAbsent(bucket, k -> new ReentrantLock());
        local.lock();
        FileChannel ch = null;
        try {
            Path folder = Path.of(System.getProperty("java.io.tmpdir"), "mmdit4j-locks-" + safe(System.getProperty("user.name", "user")));
            Files.createDirectories(folder);
            ch = FileChannel.open(folder.resolve("outputs-" + bucket + ".lock"), StandardOpenOption.CREATE,
                    StandardOpenOption.WRITE);
            return new OutputLock(local, ch, ch.lock());
        } catch (IOException | RuntimeException e) {
            try {
                if (ch != null) ch.close();
            } catch (IOException ignored) {
                // the original failure is the one to report
            }
            local.unlock();
            if (e instanceof IOException io) throw new UncheckedIOException(dir + ": cannot lock the output folder: " + io.getMessage(), io);
            throw (RuntimeException) e;
        }
    }

    /** The lock file of a folder (its real path). */
    static int bucket(Path realPath) {
        return Math.floorMod(realPath.toString().hashCode(), BUCKETS);
    }

    private static String safe(String s) {
        return s.replaceAll("[^A-Za-z0-9._-]", "_");
    }

    @Override
    public void close() {
        try {
            lock.release();
            channel.close();
        } catch (IOException ignored) {
            // closing the channel releases the lock in any case
        } finally {
            local.unlock();
        }
    }
}
