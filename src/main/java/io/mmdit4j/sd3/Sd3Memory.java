package io.mmdit4j.sd3;

import io.mmdit4j.pipeline.ClassifierFreeGuidance;
import io.mmdit4j.pipeline.GenerationSettings;
import io.mmdit4j.pipeline.MemoryModel;
import io.mmdit4j.pipeline.MemoryPlanner;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Torch;
import io.mmdit4j.vae.AutoencoderKL;
import io.mmdit4j.vae.VaeConfig;

/**
 * What an SD3 / SD3.5 generation needs in memory besides the weights: the activation formulas {@code mmdit inspect
 * --config sd3.5-large} prints after its meta dry run, over the CFG batch {@code [negative; positive]} when CFG is on,
 * and the VAE decode's peak ({@link AutoencoderKL#decodePeakBytes}).
 */
public record Sd3Memory(Sd3Config config, VaeConfig vae, DType dtype) implements MemoryModel {
    /** CLIP's tokens before T5's in the joint context. */
    public static final int CLIP_TOKENS = 77;

    /** Live activations inside one joint block: both streams, their normed copies, q/k/v, the feed-forward hidden layer. */
    public static double blockActivationBytes(Sd3Config c, long rows, long seq, DType dtype) {
        long d = c.innerDim();
        return (double) rows * seq * dtype.bytes() * (2 * d + 3 * d + 2L * c.mlpHidden() + 2 * d);
    }

    /** The fp32 score matrix of math attention (bf16 on the CPU). */
    public static double attentionScoreBytes(Sd3Config c, long rows, long seq) {
        return (double) rows * c.numAttentionHeads() * seq * seq * 4;
    }

    public long imageTokens(int width, int height) {
        long unit = (long) Sd3DryRun.VAE_SCALE * config.patchSize();
        return (width / unit) * (height / unit);
    }

    /** {@link #workingBytes} from plain numbers: {@code rows} transformer rows (2 per image with CFG) for {@code images} images. */
    public long workingBytes(int images, int rows, int width, int height, int textTokens) {
        long seq = textTokens + imageTokens(width, height);
        double step = blockActivationBytes(config, rows, seq, dtype) + (Torch.usesMathAttention(dtype) ? attentionScoreBytes(config, rows, seq) : 0);
        double kept = (double) rows * textTokens * config.jointAttentionDim() * dtype.bytes()
                + 4.0 * rows * config.inChannels() * (width / Sd3DryRun.VAE_SCALE) * (height / Sd3DryRun.VAE_SCALE) * dtype.bytes();
        return MemoryPlanner.saturated(kept + Math.max(step, AutoencoderKL.decodePeakBytes(vae, images, width, height, dtype)));
    }

    @Override
    public long workingBytes(GenerationSettings s, int images) {
        ClassifierFreeGuidance cfg = s.option(ClassifierFreeGuidance.class);
        int rows = cfg != null && cfg.active() ? 2 * images : images;
        return workingBytes(images, rows, s.width(), s.height(), CLIP_TOKENS + s.maxSequenceLength());
    }

    @Override
    public long resultBytes(GenerationSettings s) {
        return 3L * s.width() * s.height() * Float.BYTES
                + (long) config.inChannels() * (s.width() / Sd3DryRun.VAE_SCALE) * (s.height() / Sd3DryRun.VAE_SCALE) * dtype.bytes();
    }
}
