package io.mmdit4j.flux;

import io.mmdit4j.pipeline.NegativePrompts;
import io.mmdit4j.pipeline.GenerationSettings;
import io.mmdit4j.pipeline.MemoryModel;
import io.mmdit4j.pipeline.MemoryPlanner;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Torch;
import io.mmdit4j.vae.AutoencoderKL;
import io.mmdit4j.vae.VaeConfig;

import java.util.Arrays;

/**
 * What a FLUX generation needs in memory besides the weights: the activation formulas {@code mmdit inspect --config}
 * prints after its meta dry run, and the VAE decode's peak ({@link AutoencoderKL#decodePeakBytes}).
 */
public record FluxMemory(FluxConfig config, VaeConfig vae, DType dtype) implements MemoryModel {
    /** Pixels per image token: the VAE's 8× and the 2×2 packing. */
    public static final int PIXELS_PER_TOKEN_SIDE = 16;

    /**
     * Peak live activations inside one block for {@code rows} sequences of {@code seq} tokens: the block's [B,S,*] tensors
     * (residual, normed input, q/k/v, MLP before and after GELU, the attention|MLP concat, the projection) plus the
     * text/image streams. Blocks free their activations as they finish, so this is the transformer's peak whatever the depth.
     */
    public static double blockActivationBytes(FluxConfig c, long rows, long seq, DType dtype) {
        long d = c.innerDim();
        return (double) rows * seq * dtype.bytes() * (2 * d + 3 * d + 2L * c.mlpHidden() + (d + c.mlpHidden()) + 2 * d);
    }

    /** The fp32 score matrix of math attention (bf16 on the CPU; fp32 runs the flash kernel, which has none). */
    public static double attentionScoreBytes(FluxConfig c, long rows, long seq) {
        return (double) rows * c.numAttentionHeads() * seq * seq * 4;
    }

    /** The peak of one transformer step for {@code rows} images: block activations, scores where the math kernel runs, the RoPE table. */
    public double stepBytes(long rows, int width, int height, int textTokens) {
        long seq = (long) textTokens + imageTokens(width, height);
        double rope = (double) seq * Arrays.stream(config.axesDimsRope()).sum() * Double.BYTES * 2;
        return blockActivationBytes(config, rows, seq, dtype) + (Torch.usesMathAttention(dtype) ? attentionScoreBytes(config, rows, seq) : 0) + rope;
    }

    public static long imageTokens(int width, int height) {
        return (long) (width / PIXELS_PER_TOKEN_SIDE) * (height / PIXELS_PER_TOKEN_SIDE);
    }

    /** {@link #workingBytes} from plain numbers (the dry run has no settings). */
    public long workingBytes(int images, int width, int height, int textTokens) {
        return workingBytes(images, images, width, height, textTokens);
    }

    /** {@code rows} transformer rows (2 per image with true CFG) for {@code images} images. */
    public long workingBytes(int images, int rows, int width, int height, int textTokens) {
        double kept = (double) rows * textTokens * config.jointAttentionDim() * dtype.bytes()                        // prompt embeddings
                + 3.0 * images * imageTokens(width, height) * config.inChannels() * dtype.bytes();                    // x, v, the next x
        double decode = AutoencoderKL.decodePeakBytes(vae, images, width, height, dtype);
        return MemoryPlanner.saturated(kept + Math.max(stepBytes(rows, width, height, textTokens), decode));
    }

    @Override
    public long workingBytes(GenerationSettings s, int images) {
        NegativePrompts cfg = s.negativePrompts();
        return workingBytes(images, cfg != null && cfg.active() ? 2 * images : images, s.width(), s.height(), s.maxSequenceLength());
    }

    @Override
    public long resultBytes(GenerationSettings s) {
        return 3L * s.width() * s.height() * Float.BYTES + imageTokens(s.width(), s.height()) * config.inChannels() * dtype.bytes();
    }
}
