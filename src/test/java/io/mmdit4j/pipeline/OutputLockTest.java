package io.mmdit4j.pipeline;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Threads of one JVM writing into two folders that share a lock file take turns (no OverlappingFileLockException). */
class OutputLockTest {

    @Test
    void twoFoldersOfOneLockFileTakeTurnsAcrossThreads(@TempDir Path tmp) throws Exception {
        Path a = Files.createDirectories(tmp.resolve("a")).toRealPath();
        Path b = null;
        for (int i = 0; b == null; i++) {
            Path c = tmp.resolve("b" + i);
            if (OutputLock.bucket(c.toAbsolutePath()) == OutputLock.bucket(a)) b = Files.createDirectories(c).toRealPath();
        }
        assertEquals(OutputLock.bucket(a), OutputLock.bucket(b));
        CountDownLatch held = new CountDownLatch(1), release = new CountDownLatch(1);
        CompletableFuture<Void> first = CompletableFuture.runAsync(() -> {
            try (OutputLock lock = OutputLock.acquire(a)) {
                held.countDown();
                release.await(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        assertTrue(held.await(10, TimeUnit.SECONDS));
        Path other = b;
        CompletableFuture<Void> second = CompletableFuture.runAsync(() -> {
            try (OutputLock lock = OutputLock.acquire(other)) {
                // acquired once the first is released
            }
        });
        Thread.sleep(200);
        assertFalse(second.isDone(), "waits for the other folder's writer instead of failing");
        release.countDown();
        first.get(10, TimeUnit.SECONDS);
        second.get(10, TimeUnit.SECONDS);
    }
}
