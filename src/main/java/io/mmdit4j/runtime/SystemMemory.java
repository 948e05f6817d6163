package io.mmdit4j.runtime;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Memory this process can still use, in bytes: what the kernel could give without swapping ({@code MemAvailable} of
 * {@code /proc/meminfo}: free memory plus reclaimable caches), lowered by a container's limit (cgroup v2
 * {@code memory.max − memory.current}, or v1 {@code limit − usage}) when one is set; elsewhere the JVM's view of free
 * physical memory. {@code MMDIT_MEMORY_AVAILABLE} (bytes, or with a K/M/G suffix) replaces the measurement, for tests
 * and for machines where the estimate should use a smaller budget.
 */
public final class SystemMemory {
    private SystemMemory() {}

    /** Bytes available to this process now, or -1 when unknown. */
    public static long available() {
        String forced = System.getenv("MMDIT_MEMORY_AVAILABLE");
        if (forced == null) forced = System.getProperty("mmdit.memory.available");
        if (forced != null && !forced.isBlank()) return parseBytes(forced.trim());
        long a = memAvailable();
        long c = cgroupHeadroom();
        if (a < 0) a = jvmFreePhysical();
        return c >= 0 && (a < 0 || c < a) ? c : a;
    }

    /** {@code 123}, {@code 512M}, {@code 24G} → bytes. */
    public static long parseBytes(String text) {
        String t = text.toUpperCase(java.util.Locale.ROOT);
        long unit = t.endsWith("K") ? 1L << 10 : t.endsWith("M") ? 1L << 20 : t.endsWith("G") ? 1L << 30 : t.endsWith("T") ? 1L << 40 : 1;
        String digits = unit == 1 ? t : t.substring(0, t.length() - 1);
        try {
            return Math.multiplyExact(Long.parseLong(digits.trim()), unit);
        } catch (NumberFormatException | ArithmeticException e) {
            throw new IllegalArgumentException("memory size '" + text + "': expected bytes, or a number with K, M, G or T");
        }
    }

    private static long memAvailable() {
        for (String line : lines(Path.of("/proc/meminfo"))) {
            if (line.startsWith("MemAvailable:")) return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
        }
        return -1;
    }

    private static long cgroupHeadroom() {
        long v2 = headroom(Path.of("/sys/fs/cgroup/memory.max"), Path.of("/sys/fs/cgroup/memory.current"));
        if (v2 >= 0) return v2;
        return headroom(Path.of("/sys/fs/cgroup/memory/memory.limit_in_bytes"), Path.of("/sys/fs/cgroup/memory/memory.usage_in_bytes"));
    }

    private static long headroom(Path limitFile, Path usageFile) {
        List<String> limit = lines(limitFile), usage = lines(usageFile);
        if (limit.isEmpty() || usage.isEmpty()) return -1;
        try {
            long l = Long.parseLong(limit.get(0).trim()), u = Long.parseLong(usage.get(0).trim());
            return l >= (1L << 60) ? -1 : Math.max(0, l - u); // v1 writes a huge number for "no limit"
        } catch (NumberFormatException e) {
            return -1; // "max": no limit
        }
    }

    private static long jvmFreePhysical() {
        if (ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os) return os.getFreeMemorySize();
        return -1;
    }

    private static List<String> lines(Path p) {
        try {
            return Files.isReadable(p) ? Files.readAllLines(p) : List.of();
        } catch (IOException | RuntimeException e) {
            return List.of();
        }
    }
}
