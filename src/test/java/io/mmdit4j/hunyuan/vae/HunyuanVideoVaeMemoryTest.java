package io.mmdit4j.hunyuan.vae;

import io.mmdit4j.GoldenData;
import io.mmdit4j.hunyuan.vae.AutoencoderKLHunyuanVideo.DecodePlan;
import io.mmdit4j.hunyuan.vae.AutoencoderKLHunyuanVideo.Tiling;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.ProcessMemory;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.runtime.Torch;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.DeviceOptional;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.bytedeco.pytorch.global.torch.createCPUGenerator;
import static org.bytedeco.pytorch.global.torch.empty;
import static org.bytedeco.pytorch.global.torch.randn;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** Native memory of the HunyuanVideo VAE: repeated decodes keep RSS flat; meta dry runs and the decode plan at real size. */
class HunyuanVideoVaeMemoryTest {
    private static final Path MODEL = GoldenData.root().resolve("hunyuan_video_vae/models/vae");

    @Test
    void repeatedDecodesKeepRssFlat() {
        assumeTrue(Files.isDirectory(MODEL), "golden HunyuanVideo VAE not found at " + MODEL.toAbsolutePath());
        Torch.init();
        try (AutoencoderKLHunyuanVideo vae = AutoencoderKLHunyuanVideo.load(MODEL, DType.F32); PointerScope scope = new PointerScope()) {
            Tensor latents = randn(new long[] {1, 16, 2, 4, 6}, new GeneratorOptional(createCPUGenerator(1)), new TensorOptions(ScalarType.Float));
            Tiling small = Tiling.of(16, 32, 4, 16, 24, 4); // 2 × 2 tiles in each of 2 chunks
            for (int i = 0; i < 2; i++) decodeAll(vae, latents, small); // warm-up: allocator pools, JIT
            long before = ProcessMemory.rssMb();
            long start = System.nanoTime();
            for (int i = 0; i < 8; i++) decodeAll(vae, latents, small);
            long growthMb = ProcessMemory.rssMb() - before;
            System.out.printf("8 rounds of decodes: %.1f s, RSS %d -> %d MB%n", (System.nanoTime() - start) / 1e9, before, before + growthMb);
            // One round makes ~200 activations, many of 0.1-0.25 MB; leaking them would add > 10 MB per round.
            assertTrue(growthMb < 40, "RSS grew by " + growthMb + " MB over 8 rounds of decodes (" + before + " MB before)");
        }
    }

    private static void decodeAll(AutoencoderKLHunyuanVideo vae, Tensor latents, Tiling tiling) {
        Tensor decoded = vae.decodeScaled(latents, Tiling.NONE);
        vae.toVideo(decoded).close();
        decoded.close();
        vae.decode(latents, tiling).close();
    }

    @Test
    void realSizeDryRunOnMetaTensorsMatchesThePlan() {
        Torch.init();
        HunyuanVideoVaeConfig c = HunyuanVideoVaeConfig.hunyuanVideo();
        long[] latent = {1, 16, 33, 90, 160};                   // 129 frames at 720×1280, the pipeline's default
        try (AutoencoderKLHunyuanVideo meta = AutoencoderKLHunyuanVideo.meta(c, DType.BF16); PointerScope scope = new PointerScope();
             Device device = new Device("meta")) {
            Tensor z = empty(latent, new TensorOptions(ScalarType.BFloat16).device(new DeviceOptional(device)), new MemoryFormatOptional());
            Tensor untiled = meta.decode(z);
            assertArrayEquals(new long[] {1, 3, 129, 720, 1280}, Tensors.shape(untiled));
            Tensor tiled = meta.decode(z, Tiling.ENABLED);
            assertArrayEquals(Tensors.shape(untiled), Tensors.shape(tiled));

            DecodePlan plain = meta.plan(latent, Tiling.NONE);
            DecodePlan chunked = meta.plan(latent, Tiling.DIFFUSERS_DEFAULT);
            DecodePlan both = meta.plan(latent, Tiling.ENABLED);
            assertArrayEquals(Tensors.shape(untiled), plain.videoShape());
            assertEquals(1, plain.passes());
            assertEquals(11, chunked.passes());                    // latent frames 0, 3, ..., 30
            assertEquals(11 * 4 * 7, both.passes());                // × rows 0, 24, 48, 72 × columns 0, 24, ..., 144
            long output = 1L * 3 * 129 * 720 * 1280 * 2;
            System.out.printf("decode plan, bf16 129×720×1280: untiled %.1f GB, frame-wise %.1f GB, frame-wise + tiled %.1f GB (output %.2f GB)%n",
                    plain.peakActivationBytes() / 1e9, chunked.peakActivationBytes() / 1e9, both.peakActivationBytes() / 1e9, output / 1e9);
            // the largest untiled stage: the last up block's 128-channel resnets at full size, input + padded + 2 outputs
            assertTrue(plain.peakActivationBytes() >= 4L * 128 * 129 * 720 * 1280 * 2, "untiled peak " + plain.peakActivationBytes());
            assertTrue(chunked.peakActivationBytes() < plain.peakActivationBytes() / 3, "frame-wise decoding must need much less");
            assertTrue(both.peakActivationBytes() < chunked.peakActivationBytes() / 3, "spatial tiling must need much less again");
            assertTrue(both.peakActivationBytes() > output, "the output and the kept tiles are part of the tiled peak");
        }
    }
}
