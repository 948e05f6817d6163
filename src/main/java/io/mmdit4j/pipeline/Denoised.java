package io.mmdit4j.pipeline;

import io.mmdit4j.runtime.Native;
import org.bytedeco.pytorch.Tensor;

import java.util.List;

/**
 * A generation between its two stages ({@link Pipeline#denoise}, then {@link Pipeline#decode}): the final latents on the
 * model's device and what the result will record. It owns the latents until {@link Pipeline#decode} hands them to the
 * {@link GenerationResult} (then {@link #consumed()} is true); closing it before that releases them. Either way closing is
 * safe, so {@code try (Denoised d = p.denoise(r)) { ... p.decode(d) ... }} never leaks. Decoding may run on another
 * thread than denoising ({@link DecodeOverlap}); one thread at a time owns a {@code Denoised}.
 */
public final class Denoised implements AutoCloseable {
    private final GenerationSettings settings;
    private final List<String> warnings;
    private final long textNanos;
    private final long[] stepNanos;
    private final Object ready; // where the latents are complete on the device's queue (runtime.SideStream.mark), or null
    private Tensor latents;     // owned until taken
    private boolean consumed;

    Denoised(GenerationSettings settings, List<String> warnings, long textNanos, long[] stepNanos, Tensor latents, Object ready) {
        this.settings = settings;
        this.warnings = List.copyOf(warnings);
        this.textNanos = textNanos;
        this.stepNanos = stepNanos;
        this.latents = latents;
        this.ready = ready;
    }

    public GenerationSettings settings() { return settings; }

    /** The final latents in the sampler's layout (borrowed; null once consumed or closed). */
    public synchronized Tensor latents() { return latents; }

    /** Whether {@link Pipeline#decode} has taken the latents. */
    public synchronized boolean consumed() { return consumed; }

    List<String> warnings() { return warnings; }

    long textNanos() { return textNanos; }

    long[] stepNanos() { return stepNanos; }

    Object ready() { return ready; }

    /** Hands the latents to the decode (and the result); a second take is an error. */
    synchronized Tensor take() {
        if (latents == null) {
            throw new IllegalStateException(consumed ? "these latents were decoded already" : "these latents were closed before decoding");
        }
        Tensor t = latents;
        latents = null;
        consumed = true;
        return t;
    }

    /** Hands the latents back after a decode that failed (they are released by {@link #close}). */
    synchronized void giveBack(Tensor t) {
        latents = t;
        consumed = false;
    }

    @Override
    public synchronized void close() {
        Native.release(latents);
        latents = null;
    }
}
