package io.mmdit4j.hunyuan;

import io.mmdit4j.hunyuan.vae.AutoencoderKLHunyuanVideo;
import io.mmdit4j.hunyuan.vae.HunyuanVideoVaeConfig;
import io.mmdit4j.image.PngImages;
import io.mmdit4j.pipeline.GenerationRequest;
import io.mmdit4j.pipeline.GenerationSettings;
import io.mmdit4j.pipeline.InitImage;
import io.mmdit4j.pipeline.LoadOptions;
import io.mmdit4j.pipeline.Pipeline;
import io.mmdit4j.pipeline.Pipelines;
import io.mmdit4j.runtime.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.awt.image.BufferedImage;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The memory estimate of image-to-video counts the encode that runs before the denoising (the still videos and the
 * encoder's own plan): a request's estimate is the larger of its two phases.
 */
class HunyuanVideoMemoryTest {
    @Test
    void theEncodeIsPartOfAnImageToVideoRequestsEstimate(@TempDir Path tmp) {
        Path picture = tmp.resolve("init.png");
        PngImages.write(picture, new BufferedImage(64, 64, BufferedImage.TYPE_INT_RGB), Map.of());
        try (Pipeline p = Pipelines.load("hunyuan-video-tiny-demo")) {
            HunyuanVideoMemory m = (HunyuanVideoMemory) HunyuanVideoFamily.INSTANCE.memoryModel(Pipelines.prepare("hunyuan-video-tiny-demo", LoadOptions.defaults()).path(), LoadOptions.defaults());
            GenerationRequest.Builder t2v = GenerationRequest.builder().prompt("a fox").size(64, 64).frames(33).steps(2);
            GenerationSettings plain = p.resolve(t2v.build());
            GenerationSettings i2v = p.resolve(t2v.option(InitImage.of(picture, 0.6)).build());
            long encode = m.encodeBytes(1, 64, 64, 33), generate = m.workingBytes(plain, 1);
            assertEquals(Math.max(encode, generate), m.workingBytes(i2v, 1), "the request's estimate is its larger phase");
            assertEquals(generate, m.workingBytes(p.resolve(t2v.frames(33).build()), 1));
        }
        // the real VAE at the reference's size: the still video (fp32 and bf16) and the encoder's activations
        HunyuanVideoVaeConfig vae = HunyuanVideoVaeConfig.hunyuanVideo();
        HunyuanVideoMemory real = new HunyuanVideoMemory(HunyuanVideoConfig.hunyuanVideo(), vae, DType.BF16);
        long still = 61L * 3 * 320 * 512 * 6;
        long pass = AutoencoderKLHunyuanVideo.encodePlan(vae, DType.BF16, new long[] {1, 3, 61, 320, 512},
                AutoencoderKLHunyuanVideo.Tiling.DIFFUSERS_DEFAULT).peakActivationBytes();
        assertTrue(pass > 1L << 30, "the frame-chunked encode of 61 frames at 512x320 needs GBs: " + pass);
        assertEquals(still + pass, real.encodeBytes(1, 512, 320, 61), 1.0);
    }
}
