package io.mmdit4j.sampling;

import java.util.Arrays;

/** Wall time per phase of one generation, in nanoseconds: text encoding, every denoising step, decoding. */
public record Timings(long textEncode, long[] steps, long decode) {
    public long denoise() {
        return Arrays.stream(steps).sum();
    }
}
