package io.mmdit4j.cosmos;

import io.mmdit4j.pipeline.ClassifierFreeGuidance;
import io.mmdit4j.pipeline.GenerationSettings;
import io.mmdit4j.pipeline.MemoryModel;
import io.mmdit4j.pipeline.MemoryPlanner;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Torch;
import io.mmdit4j.vae.wan.AutoencoderKLWan;
import io.mmdit4j.vae.wan.WanVaeConfig;

/**
 * What a COSMOS generation needs in memory besides the weights: the per-block activation formula {@code mmdit inspect
 * --config cosmos-predict2-2b} prints after its meta dry run (one forward of {@code images} rows: the conditional and the
 * unconditional pass of x0-form CFG run one after the other), the prompts' T5 states (both passes' with CFG), the float32
 * latents and predictions of the sampler, and the Wan VAE decode's peak ({@link AutoencoderKLWan#peakActivationBytes}).
 */
public record CosmosMemory(CosmosConfig config, WanVaeConfig vae, DType dtype) implements MemoryModel {
    /** Image tokens of a {@code width × height} image: the VAE's 8× and the transformer's spatial patch. */
    public long imageTokens(int width, int height) {
        return (height / 8L / config.patchSize()[1]) * (width / 8L / config.patchSize()[2]);
    }

    /**
     * Live activations inside one block for {@code rows} rows: residual, modulated input, q/k/v, attention output, the MLP
     * hidden layer and its output over the image tokens, and the cross-attention's keys and values over the text.
     */
    public static double blockActivationBytes(CosmosConfig c, long rows, long imageTokens, long textTokens, DType dtype) {
        long d = c.innerDim();
        return (double) rows * imageTokens * dtype.bytes() * (2 * d + 3 * d + d + c.mlpHidden() + d) + (double) rows * textTokens * 2 * d * dtype.bytes();
    }

    /** The fp32 score matrices of math attention, self- and cross-attention (bf16 on the CPU; fp32 runs the flash kernel). */
    public static double attentionScoreBytes(CosmosConfig c, long rows, long imageTokens, long textTokens) {
        return (double) rows * c.numAttentionHeads() * imageTokens * Math.max(imageTokens, textTokens) * 4;
    }

    /** {@link #workingBytes} from plain numbers; {@code cfg}: the unconditional pass and its T5 states too. */
    public long workingBytes(int images, boolean cfg, int width, int height, int textTokens) {
        long s = imageTokens(width, height);
        int passes = cfg ? 2 : 1;
        double latents = (double) images * vae.zDim() * (height / 8) * (width / 8) * Float.BYTES;
        double kept = (double) passes * images * textTokens * config.textEmbedDim() * dtype.bytes() + (2.0 + 2 * passes) * latents; // x, x0 per pass, their sum, the next x
        double step = blockActivationBytes(config, images, s, textTokens, dtype)
                + (Torch.usesMathAttention(dtype) ? attentionScoreBytes(config, images, s, textTokens) : 0);
        double decode = AutoencoderKLWan.peakActivationBytes(vae, dtype, images, height / 8, width / 8);
        return MemoryPlanner.saturated(kept + Math.max(step, decode));
    }

    @Override
    public long workingBytes(GenerationSettings s, int images) {
        ClassifierFreeGuidance cfg = s.option(ClassifierFreeGuidance.class);
        return workingBytes(images, cfg != null && cfg.active(), s.width(), s.height(), s.maxSequenceLength());
    }

    @Override
    public long resultBytes(GenerationSettings s) {
        return resultBytes(s.width(), s.height());
    }

    /** One image: fp32 pixels and its float32 latents. */
    public long resultBytes(int width, int height) {
        return 3L * width * height * Float.BYTES + (long) vae.zDim() * (height / 8) * (width / 8) * Float.BYTES;
    }
}
