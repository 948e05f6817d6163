package io.mmdit4j.sampling;

import org.bytedeco.pytorch.Tensor;

import java.util.function.UnaryOperator;

/**
 * The part of a pipeline's {@code generate} that FLUX, SD3 and HunyuanVideo share once their conditioning exists:
 * denoise with every step timed, then decode with the decode timed, freeing the latents if decoding fails.
 */
public final class TimedGeneration {
    private TimedGeneration() {}

    /** Runs the denoising loop, writing each step's wall time into {@code stepNanos}; returns caller-owned latents. */
    @FunctionalInterface
    public interface Denoiser {
        Tensor denoise(long[] stepNanos);
    }

    /** Decoded output and the latents it came from (both caller-owned), with the phase times. */
    public record Output(Tensor decoded, Tensor latents, Timings timings) {}

    /** @param textNanos the caller's measured text-encoding time */
    public static Output denoiseAndDecode(long textNanos, int steps, Denoiser denoiser, UnaryOperator<Tensor> decode) {
        long[] stepNanos = new long[steps];
        Tensor latents = denoiser.denoise(stepNanos);
        long t1 = System.nanoTime();
        Tensor decoded;
        try {
            decoded = decode.apply(latents);
        } catch (RuntimeException e) {
            latents.close();
            throw e;
        }
        return new Output(decoded, latents, new Timings(textNanos, stepNanos, System.nanoTime() - t1));
    }
}
