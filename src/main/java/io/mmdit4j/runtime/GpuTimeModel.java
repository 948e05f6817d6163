package io.mmdit4j.runtime;

import java.util.Locale;

/**
 * A per-step time model of a transformer forward on a GPU that has never run here: GEMM FLOPs at an assumed fraction
 * of the card's dense bf16 peak, attention FLOPs at published SDPA rates, elementwise traffic at HBM bandwidth, and the
 * host's dispatch time (measured on {@code meta}), which overlaps the GPU's work when launches are asynchronous and
 * only shows when it is the longer of the two. A model, not a measurement: its inputs are listed with every report.
 *
 * @param name        card
 * @param peakBf16    dense bf16 tensor-core peak, FLOP/s
 * @param hbm         memory bandwidth, bytes/s
 * @param gemmEff     assumed fraction of {@code peakBf16} reached by the model's large GEMMs
 * @param sdpaDefault attention rate of PyTorch's default SDPA (FlashAttention-2) at FLUX's shape, FLOP/s
 * @param sdpaCudnn   attention rate of cuDNN attention at FLUX's shape, FLOP/s
 * @param hbmEff      assumed fraction of {@code hbm} reached by elementwise kernels
 */
public record GpuTimeModel(String name, double peakBf16, double hbm, double gemmEff, double sdpaDefault, double sdpaCudnn, double hbmEff) {

    /**
     * H100 SXM: 989 TFLOP/s dense bf16, 3.35 TB/s HBM3 (NVIDIA's data sheet); SDPA at FLUX's shape 329 TFLOP/s default,
     * 631 TFLOP/s cuDNN (the figures issue 15 cites); GEMMs at 65 % of peak and elementwise kernels at 80 % of HBM are
     * assumptions, not measurements.
     */
    public static final GpuTimeModel H100 = new GpuTimeModel("h100", 989e12, 3.35e12, 0.65, 329e12, 631e12, 0.80);
    /** H200: the H100's compute with 4.8 TB/s HBM3e; the same assumptions. */
    public static final GpuTimeModel H200 = new GpuTimeModel("h200", 989e12, 4.8e12, 0.65, 329e12, 631e12, 0.80);

    public static GpuTimeModel parse(String name) {
        return switch (name.toLowerCase(Locale.ROOT)) {
            case "h100" -> H100;
            case "h200" -> H200;
            default -> throw new IllegalArgumentException("--gpu " + name + ": expected h100 or h200");
        };
    }

    /** The modelled step. */
    public record Step(double gemmMs, double attentionDefaultMs, double attentionCudnnMs, double elementwiseMs, double hostMs) {
        /** Eager with default SDPA: device work, or the host's dispatch when that is longer (launches are asynchronous). */
        public double eagerMs() {
            return Math.max(gemmMs + attentionDefaultMs + elementwiseMs, hostMs);
        }

        /** cuDNN attention and one CUDA-graph replay per step: the host's dispatch drops out (a replay costs ~0.1 ms). */
        public double cudnnGraphsMs() {
            return gemmMs + attentionCudnnMs + elementwiseMs + 0.1;
        }
    }

    public Step step(double gemmFlops, double attentionFlops, double elementwiseBytes, double hostMs) {
        return new Step(gemmFlops / (peakBf16 * gemmEff) * 1e3, attentionFlops / sdpaDefault * 1e3, attentionFlops / sdpaCudnn * 1e3,
                elementwiseBytes / (hbm * hbmEff) * 1e3, hostMs);
    }

    /**
     * Elementwise traffic of a FLUX-like step, bytes: every block makes about {@code passes} full reads or writes of its
     * {@code [tokens, dim]} activations outside the GEMMs and the attention kernel (layer norms and their modulation, the
     * q/k RMS norms, RoPE in fp32, the concatenations, GELU over the 4x-wide MLP, the gated residuals). Counted from the
     * code of {@code FluxDoubleBlock}/{@code FluxSingleBlock}: about 54 and 51 passes; 52 is used for both.
     */
    public static double fluxElementwiseBytes(long rows, long tokens, long dim, int blocks, int bytesPerValue) {
        double passes = 52;
        return passes * blocks * (double) rows * tokens * dim * bytesPerValue;
    }
}
