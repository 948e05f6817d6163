package io.mmdit4j.hunyuan;

import io.mmdit4j.hunyuan.vae.AutoencoderKLHunyuanVideo;
import io.mmdit4j.hunyuan.vae.HunyuanVideoVaeConfig;
import io.mmdit4j.pipeline.GenerationSettings;
import io.mmdit4j.pipeline.MemoryModel;
import io.mmdit4j.pipeline.MemoryPlanner;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Torch;

/**
 * What a HunyuanVideo generation needs in memory besides the weights: the activation formulas {@code mmdit inspect
 * --config hunyuan-video} prints after its meta dry run, and the 3-D VAE decode's own plan
 * ({@link AutoencoderKLHunyuanVideo#plan}, with the pipeline's frame-chunked decode).
 */
public record HunyuanVideoMemory(HunyuanVideoConfig config, HunyuanVideoVaeConfig vae, DType dtype) implements MemoryModel {
    /** Pixels per latent (the VAE's spatial 8×). */
    public static final int VAE_SCALE = 8;

    /** One single-stream block's live [B,S,*] tensors (residual, normed input, q/k/v, MLP before and after GELU, the concat, the projection) plus the two streams. */
    public static double blockActivationBytes(HunyuanVideoConfig c, long rows, long seq, DType dtype) {
        long d = c.innerDim();
        return (double) rows * seq * dtype.bytes() * (2 * d + 3 * d + 2L * c.mlpHidden() + (d + c.mlpHidden()) + 2 * d);
    }

    /** The fp32 score matrix of math attention (bf16 on the CPU). */
    public static double attentionScoreBytes(HunyuanVideoConfig c, long rows, long seq) {
        return (double) rows * c.numAttentionHeads() * seq * seq * 4;
    }

    /** Latent frames of {@code frames} frames: the causal VAE keeps the first and compresses the rest 4×. */
    public static int latentFrames(int frames) {
        return (frames - 1) / 4 + 1;
    }

    public long videoTokens(int width, int height, int frames) {
        return (long) (latentFrames(frames) / config.patchSizeT()) * (height / VAE_SCALE / config.patchSize()) * (width / VAE_SCALE / config.patchSize());
    }

    /** {@link #workingBytes} from plain numbers. */
    public long workingBytes(int videos, int width, int height, int frames, int textTokens) {
        long seq = textTokens + videoTokens(width, height, frames);
        double step = blockActivationBytes(config, videos, seq, dtype) + (Torch.usesMathAttention(dtype) ? attentionScoreBytes(config, videos, seq) : 0);
        double latents = (double) config.inChannels() * latentFrames(frames) * (height / VAE_SCALE) * (width / VAE_SCALE) * dtype.bytes();
        double kept = (double) videos * textTokens * config.textEmbedDim() * dtype.bytes() + 3.0 * videos * latents;
        long[] shape = {videos, vae.latentChannels(), latentFrames(frames), height / VAE_SCALE, width / VAE_SCALE};
        double decode = AutoencoderKLHunyuanVideo.plan(vae, dtype, shape, AutoencoderKLHunyuanVideo.Tiling.DIFFUSERS_DEFAULT).peakActivationBytes()
                + (double) videos * frames * 3L * height * width * Float.BYTES * 2; // the decoded video and its fp32 frames
        return MemoryPlanner.saturated(kept + Math.max(step, decode));
    }

    @Override
    public long workingBytes(GenerationSettings s, int images) {
        long generate = workingBytes(images, s.width(), s.height(), HunyuanVideoPipeline.frames(s), s.maxSequenceLength());
        if (s.option(io.mmdit4j.pipeline.InitImage.class) == null) return generate;
        return Math.max(generate, encodeBytes(images, s.width(), s.height(), HunyuanVideoPipeline.frames(s)));
    }

    /**
     * Image-to-video's encode, which runs before the denoising (so the larger of the two phases counts): the still videos
     * (fp32 and in the VAE dtype) and the encoder's own plan ({@link AutoencoderKLHunyuanVideo#encodePlan}). Its weights,
     * loaded on the first encode, are in the VAE file the weight estimate already counts.
     */
    public long encodeBytes(int videos, int width, int height, int frames) {
        double still = (double) videos * 3L * frames * height * width * (Float.BYTES + dtype.bytes());
        long[] shape = {videos, vae.inChannels(), frames, height, width};
        double pass = AutoencoderKLHunyuanVideo.encodePlan(vae, dtype, shape, AutoencoderKLHunyuanVideo.Tiling.DIFFUSERS_DEFAULT).peakActivationBytes();
        return MemoryPlanner.saturated(still + pass);
    }

    @Override
    public long resultBytes(GenerationSettings s) {
        int frames = HunyuanVideoPipeline.frames(s);
        return (long) frames * 3L * s.width() * s.height() * Float.BYTES
                + (long) config.inChannels() * latentFrames(frames) * (s.height() / VAE_SCALE) * (s.width() / VAE_SCALE) * dtype.bytes();
    }
}
