package io.mmdit4j.pipeline;

import java.util.Locale;

/**
 * The memory a generation needs, by part, and how its images are split into chunks ({@link MemoryPlanner}).
 *
 * @param weightBytes  the model's weights in the compute dtype (0 when they are loaded already and so are not available memory)
 * @param workingBytes the peak of one chunk ({@link MemoryModel#workingBytes})
 * @param resultBytes  every image's output and latents, kept until the generation returns
 * @param runtimeBytes the JVM, libtorch and their allocators
 * @param chunkImages  images per chunk (the last chunk may have fewer)
 * @param images       images of the request
 */
public record MemoryEstimate(long weightBytes, long workingBytes, long resultBytes, long runtimeBytes, int chunkImages, int images) {
    public long totalBytes() {
        return MemoryPlanner.saturated((double) weightBytes + workingBytes + resultBytes + runtimeBytes);
    }

    public int chunks() {
        return (images + chunkImages - 1) / chunkImages;
    }

    /** {@code 41.2 GB (weights 23.8 GB, a batch of 1 image 9.1 GB, results of 8 images 0.1 GB, runtime 0.4 GB)}. */
    public String describe() {
        return String.format(Locale.ROOT, "%s (%sa batch of %s %s, results of %s %s, runtime %s)", gb(totalBytes()),
                weightBytes > 0 ? "weights " + gb(weightBytes) + ", " : "", images(chunkImages), gb(workingBytes), images(images), gb(resultBytes),
                gb(runtimeBytes));
    }

    private static String images(int n) {
        return n + (n == 1 ? " image" : " images");
    }

    static String gb(long bytes) {
        if (bytes >= 1e12) return String.format(Locale.ROOT, "%,.1f TB", bytes / 1e12);
        return bytes >= 100_000_000L ? String.format(Locale.ROOT, "%.1f GB", bytes / 1e9) : String.format(Locale.ROOT, "%.0f MB", bytes / 1e6);
    }
}
