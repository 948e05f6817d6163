package io.mmdit4j.runtime;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** This process's resident memory from {@code /proc/self/status} (Linux), in MB; -1 where unavailable. */
public final class ProcessMemory {
    private ProcessMemory() {}

    /** Current resident set size. */
    public static long rssMb() {
        return field("VmRSS:");
    }

    /** Peak resident set size so far. */
    public static long peakRssMb() {
        return field("VmHWM:");
    }

    /**
     * Resets the peak ({@code VmHWM}) to the current RSS (Linux {@code clear_refs} 5), so that {@link #peakRssMb} then
     * measures the peak of what follows. Returns false where the kernel does not allow it.
     */
    public static boolean resetPeak() {
        try {
            Files.writeString(Path.of("/proc/self/clear_refs"), "5");
            return true;
        } catch (IOException | UnsupportedOperationException | SecurityException e) {
            return false;
        }
    }

    private static long field(String name) {
        Path status = Path.of("/proc/self/status");
        if (!Files.isReadable(status)) return -1;
        try {
            for (String line : Files.readAllLines(status)) {
                if (line.startsWith(name)) return Long.parseLong(line.replaceAll("[^0-9]", "")) / 1024;
            }
            return -1;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
