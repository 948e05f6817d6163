package io.mmdit4j.hidream;

import io.mmdit4j.pipeline.ClassifierFreeGuidance;
import io.mmdit4j.pipeline.GenerationSettings;
import io.mmdit4j.pipeline.MemoryModel;
import io.mmdit4j.pipeline.MemoryPlanner;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Torch;
import io.mmdit4j.vae.AutoencoderKL;
import io.mmdit4j.vae.VaeConfig;

/**
 * What a HiDream-I1 generation needs in memory besides the weights: the activation formulas {@code mmdit inspect --config
 * hidream-i1-full} prints after its meta dry run ({@link HiDreamDryRun}), over the CFG batch {@code [negative; positive]}
 * when CFG is on, at the size the area-preserving resize gives (non-square latents padded to {@code max_seq} tokens), plus
 * the text conditioning a request keeps (T5 and every Llama hidden state the blocks read, and their per-block
 * projections) and the VAE decode's peak ({@link AutoencoderKL#decodePeakBytes}).
 */
public record HiDreamMemory(HiDreamConfig config, VaeConfig vae, DType dtype) implements MemoryModel {
    /** Image tokens of a resized {@code width × height} image: {@code max_seq} when non-square latents are padded. */
    public long imageTokens(int width, int height) {
        long h = 2L * (height / 16), w = 2L * (width / 16);
        return h == w ? (h / config.patchSize()) * (w / config.patchSize()) : config.maxSeq();
    }

    /** The joint sequence of every attention: image, T5, the last block's Llama tokens and the block's own ({@link HiDreamDryRun.Result#sequence}). */
    public static long sequence(long imageTokens, long textTokens) {
        return imageTokens + 3 * textTokens;
    }

    /**
     * Live activations inside one block for {@code rows} rows: the streams and their normed copies, q/k/v and the attention
     * output over the joint sequence, the MoE's hidden activations (gate and up of the largest routed group, the shared
     * expert's) and its accumulator over the image tokens.
     */
    public static double blockActivationBytes(HiDreamConfig c, long rows, long imageTokens, long seq, DType dtype) {
        long d = c.innerDim();
        return (double) rows * dtype.bytes() * (seq * d * 6.0 + imageTokens * (2.0 * c.expertHidden() + 2.0 * c.sharedExpertHidden() + 2 * d));
    }

    /** The fp32 score matrix of math attention (bf16 on the CPU; fp32 runs the flash kernel, which has none). */
    public static double attentionScoreBytes(HiDreamConfig c, long rows, long seq) {
        return (double) rows * c.numAttentionHeads() * seq * seq * 4;
    }

    /** The captions projected once per request and kept over the loop: the T5 stream and one Llama projection per block. */
    public static double projectedTextBytes(HiDreamConfig c, long rows, long textTokens, DType dtype) {
        return (double) rows * (c.totalBlocks() + 1) * textTokens * c.innerDim() * dtype.bytes();
    }

    /** The encoders' outputs a request keeps: T5 and the Llama hidden states the blocks read, each prompt's and the batch's copy. */
    public static double embeddingBytes(HiDreamConfig c, long rows, long textTokens, DType dtype) {
        return 2.0 * rows * textTokens * ((long) c.t5Channels() + (long) c.llamaStatesNeeded() * c.llamaChannels()) * dtype.bytes();
    }

    /** The peak of one transformer step for {@code rows} rows: block activations, and the scores where the math kernel runs. */
    public double stepBytes(long rows, int width, int height, int textTokens) {
        long s = imageTokens(width, height), seq = sequence(s, textTokens);
        return blockActivationBytes(config, rows, s, seq, dtype) + (Torch.usesMathAttention(dtype) ? attentionScoreBytes(config, rows, seq) : 0);
    }

    /**
     * {@link #workingBytes} from plain numbers: {@code rows} transformer rows (2 per image with CFG) for {@code images}
     * images of the resized {@code width × height}.
     */
    public long workingBytes(int images, int rows, int width, int height, int textTokens) {
        double latents = (double) config.inChannels() * 2 * (height / 16) * 2 * (width / 16) * dtype.bytes();
        double kept = embeddingBytes(config, rows, textTokens, dtype) + projectedTextBytes(config, rows, textTokens, dtype)
                + 4.0 * rows * latents;                                                          // x, [x; x], v, the next x (and the step noise)
        double decode = AutoencoderKL.decodePeakBytes(vae, images, width, height, dtype);
        return MemoryPlanner.saturated(kept + Math.max(stepBytes(rows, width, height, textTokens), decode));
    }

    @Override
    public long workingBytes(GenerationSettings s, int images) {
        int[] wh = HiDreamPipeline.imageSize(s);
        ClassifierFreeGuidance cfg = s.option(ClassifierFreeGuidance.class);
        int rows = cfg != null && cfg.active() ? 2 * images : images;
        return workingBytes(images, rows, wh[0], wh[1], s.maxSequenceLength());
    }

    @Override
    public long resultBytes(GenerationSettings s) {
        int[] wh = HiDreamPipeline.imageSize(s);
        return resultBytes(wh[0], wh[1]);
    }

    /** One image of the resized {@code width × height}: fp32 pixels and its latents. */
    public long resultBytes(int width, int height) {
        return 3L * width * height * Float.BYTES + (long) config.inChannels() * 2 * (height / 16) * 2 * (width / 16) * dtype.bytes();
    }
}
