package io.mmdit4j.pipeline;

import io.mmdit4j.runtime.SystemMemory;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Plans a generation's memory before any work: how its images are split into chunks, what that needs
 * ({@link MemoryEstimate}), and the refusal when it exceeds what is available.
 *
 * <p>Chunks: the images run in chunks of at most {@link LoadOptions#maxBatch} images whose working set stays under
 * {@link #CHUNK_TARGET_BYTES} (never under one image), so {@code --batch 200} makes 25 chunks of 8 instead of one batch
 * that holds 200 images' activations at once. The chunk size depends only on the settings and the model, never on the
 * memory free at the moment, so two runs of the same settings batch the same images together and write the same bits
 * (images of different batch sizes differ by float rounding, see the README). A chunk is whole prompts, or images of one
 * prompt, so each chunk is an ordinary request ({@link GenerationSettings#chunk}).
 */
public final class MemoryPlanner {
    /** The working set a chunk is kept under (one image may need more; it then runs alone). */
    public static final long CHUNK_TARGET_BYTES = 2L << 30;
    /** The JVM, libtorch and its allocator's own pages, measured with the tiny demo model (about 350 MB of RSS). */
    public static final long RUNTIME_BYTES = 400L << 20;

    private MemoryPlanner() {}

    /** Images per chunk for {@code s}: at most {@code maxBatch}, fewer while a chunk's working set exceeds the target. */
    static int chunkImages(GenerationSettings s, MemoryModel m, int maxBatch) {
        int n = Math.max(1, Math.min(s.images(), maxBatch));
        while (n > 1 && m.workingBytes(s, n) > CHUNK_TARGET_BYTES) n--;
        return n;
    }

    /** The estimate of {@code s}; {@code weightBytes} 0 when the weights are loaded already. */
    static MemoryEstimate estimate(GenerationSettings s, MemoryModel m, long weightBytes, int maxBatch) {
        int chunk = chunkImages(s, m, maxBatch);
        return new MemoryEstimate(weightBytes, m.workingBytes(s, chunk), saturated((double) s.images() * m.resultBytes(s)), RUNTIME_BYTES, chunk,
                s.images());
    }

    /** A byte count computed in double (sizes of absurd requests overflow long), clamped to {@code Long.MAX_VALUE}. */
    public static long saturated(double bytes) {
        return bytes >= Long.MAX_VALUE ? Long.MAX_VALUE : (long) Math.ceil(bytes);
    }

    /**
     * Refuses {@code e} when it exceeds the memory available: {@code budget} bytes, or measured now
     * ({@link SystemMemory#available}) when {@code budget} is {@link LoadOptions#MEASURED}; nothing is checked when it is
     * {@link LoadOptions#UNCHECKED} or the machine does not say.
     */
    static void check(MemoryEstimate e, long budget) {
        if (budget == LoadOptions.UNCHECKED) return;
        long available = budget == LoadOptions.MEASURED ? SystemMemory.available() : budget;
        if (available < 0 || e.totalBytes() <= available) return;
        throw new InsufficientMemoryException(String.format(Locale.ROOT,
                "this generation needs about %s of memory, but %s %s available: make fewer or smaller images%s, or run it anyway with "
                        + "--ignore-memory-check (LoadOptions.checkMemory(false))", e.describe(), MemoryEstimate.gb(available),
                budget == LoadOptions.MEASURED ? "are" : "is the budget", e.weightBytes() > 0 ? ", use a smaller dtype (bf16)" : ""), e, available);
    }

    /**
     * Image ranges {@code [from, to)} of at most {@code chunk} images each: whole prompts when a prompt's images fit in a
     * chunk, else slices of one prompt's images.
     */
    static List<int[]> chunks(GenerationSettings s, int chunk) {
        List<int[]> out = new ArrayList<>();
        int n = s.imagesPerPrompt(), prompts = s.prompts().size();
        if (n <= chunk) {
            int k = chunk / n;
            for (int p = 0; p < prompts; p += k) out.add(new int[] {p * n, Math.min(prompts, p + k) * n});
        } else {
            for (int p = 0; p < prompts; p++) {
                for (int a = 0; a < n; a += chunk) out.add(new int[] {p * n + a, p * n + Math.min(n, a + chunk)});
            }
        }
        return out;
    }
}
