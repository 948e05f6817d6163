package io.mmdit4j.pipeline;

import io.mmdit4j.sampling.StepListener;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Several requests on one pipeline with each request's VAE decode beside the next request's denoising: the caller's
 * thread denoises request {@code i + 1} while a decode worker decodes request {@code i} ({@link Pipeline#denoise} /
 * {@link Pipeline#decode}); on CUDA the decode runs on a second stream ({@code runtime.SideStream}), so the GPU overlaps
 * them too (never run: no GPU here). The results are those of {@link Pipeline#generate} for each request, bit for bit,
 * in request order.
 *
 * <p>Ownership: a request's latents belong to its {@link Denoised} until its decode hands them to the result; a result
 * belongs to the worker until {@link #generateAll} returns it. On any failure (a bad request, a cancelled step, a failed
 * decode) every result and latents made so far are closed before the exception leaves, so nothing native is left behind.
 */
public final class DecodeOverlap implements AutoCloseable {
    private final Pipeline pipeline;
    private final ExecutorService decoder;

    public DecodeOverlap(Pipeline pipeline) {
        this.pipeline = pipeline;
        this.decoder = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "mmdit-decode-overlap");
            t.setDaemon(true);
            return t;
        });
    }

    /** Generates every request, decoding each beside the next one's denoising; {@code listener} sees every step of each. */
    public List<GenerationResult> generateAll(List<GenerationRequest> requests, StepListener listener) {
        List<Future<GenerationResult>> decodes = new ArrayList<>();
        try {
            for (GenerationRequest r : requests) {
                Denoised d = pipeline.denoise(pipeline.resolve(r), listener); // overlaps the decode of the request before
                decodes.add(decoder.submit(() -> {
                    try (d) {
                        return pipeline.decode(d);
                    }
                }));
            }
            List<GenerationResult> results = new ArrayList<>(decodes.size());
            for (Future<GenerationResult> f : decodes) results.add(f.get());
            decodes.clear(); // the caller owns them now
            return results;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new java.util.concurrent.CancellationException("interrupted while waiting for a decode");
        } catch (ExecutionException e) {
            Throwable c = e.getCause();
            if (c instanceof RuntimeException re) throw re;
            if (c instanceof Error err) throw err;
            throw new IllegalStateException(c);
        } finally {
            closeAll(decodes); // only on failure: every submitted decode finishes, then its result is released
        }
    }

    /** Waits for each decode (its latents are released by it either way) and closes what it made. */
    private static void closeAll(List<Future<GenerationResult>> decodes) {
        for (Future<GenerationResult> f : decodes) {
            try {
                f.get().close();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } catch (ExecutionException e) {
                // this decode failed on its own: its latents were closed by the worker
            }
        }
    }

    /** Stops the decode worker (after the decodes already submitted). */
    @Override
    public void close() {
        decoder.shutdown();
    }
}
