package io.mmdit4j.hunyuan.vae;

import io.mmdit4j.GoldenData;
import io.mmdit4j.hunyuan.vae.AutoencoderKLHunyuanVideo.DecodePlan;
import io.mmdit4j.hunyuan.vae.AutoencoderKLHunyuanVideo.Tiling;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.runtime.Torch;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.bytedeco.pytorch.global.torch.createCPUGenerator;
import static org.bytedeco.pytorch.global.torch.equal;
import static org.bytedeco.pytorch.global.torch.randn;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Frame-wise and spatially tiled decoding (diffusers' {@code _temporal_tiled_decode} / {@code tiled_decode}) on the
 * tiny golden model: output shapes and frame counts, agreement with the untiled decode within the tolerances
 * stated below, bit-identity when everything fits in one tile, and the decode plan.
 */
class HunyuanVideoVaeTilingTest {
    private static final Path MODEL = GoldenData.root().resolve("hunyuan_video_vae/models/vae");
    /** Small tiles so that a small video needs several: 32×32-pixel tiles every 24 pixels, 8-frame chunks every 4 frames. */
    private static final Tiling SMALL = Tiling.of(32, 32, 8, 24, 24, 4);

    /** Stated tiled-vs-untiled bounds on random latents of the random tiny model (measured: max 4.7–5.3, mean 0.41–0.59). */
    private static final double RANDOM_MAX = 8, RANDOM_MEAN = 0.8;

    private static AutoencoderKLHunyuanVideo vae;

    @BeforeAll
    static void init() {
        assumeTrue(Files.isDirectory(MODEL), "golden HunyuanVideo VAE not found at " + MODEL.toAbsolutePath());
        Torch.init();
        vae = AutoencoderKLHunyuanVideo.load(MODEL, DType.F32);
    }

    @AfterAll
    static void close() {
        if (vae != null) vae.close();
    }

    private static Tensor latents(long seed, long... shape) {
        Generator g = createCPUGenerator(seed);
        return randn(shape, new GeneratorOptional(g), new TensorOptions(ScalarType.Float));
    }

    @Test
    void framewiseChunkingGivesTheExpectedFrameCounts() {
        try (PointerScope scope = new PointerScope()) {
            Tensor z = latents(1, 1, 16, 7, 4, 6);                  // 7 latent frames > 16/4: diffusers chunks by default
            Tensor full = vae.decode(z);
            Tensor chunked = vae.decode(z, Tiling.DIFFUSERS_DEFAULT); // chunks of latent frames 0-4, 3-6, 6
            assertArrayEquals(new long[] {1, 3, 25, 32, 48}, Tensors.shape(full));
            assertArrayEquals(Tensors.shape(full), Tensors.shape(chunked), "1 + 4·(7 − 1) = 25 frames either way");
            DecodePlan plan = vae.plan(new long[] {1, 16, 7, 4, 6}, Tiling.DIFFUSERS_DEFAULT);
            assertArrayEquals(Tensors.shape(full), plan.videoShape());
            assertEquals(3, plan.passes());
            report("framewise (random latents)", full, chunked, RANDOM_MAX, RANDOM_MEAN);

            for (int f = 1; f <= 6; f++) {                          // chunks of 3 latent frames every 1
                Tensor frames = vae.decode(latents(2, 1, 16, f, 1, 1), SMALL);
                assertArrayEquals(new long[] {1, 3, 1 + 4 * (f - 1), 8, 8}, Tensors.shape(frames), f + " latent frames");
                assertEquals(f <= 2 ? 1 : f, vae.plan(new long[] {1, 16, f, 1, 1}, SMALL).passes(), f + " latent frames");
            }
        }
    }

    @Test
    void tiledDecodeNeedingSeveralTilesStaysWithinTheStatedToleranceOfUntiled() {
        try (PointerScope scope = new PointerScope()) {
            // Constant latents decode to a constant video, whatever the tiling: tiled = untiled up to rounding (zero-variance
            // GroupNorms amplify the last bits by 1/sqrt(eps) = 1000 per norm; measured max 0.0125, mean 0.0022).
            Tensor constant = latents(3, 1, 16, 1, 1, 1).expand(new long[] {1, 16, 3, 6, 7}).contiguous();
            assertEquals(3 * 6, vae.plan(new long[] {1, 16, 3, 6, 7}, SMALL).passes(), "3 chunks × (2 × 3) tiles");
            report("spatial+framewise (constant latents)", vae.decode(constant), vae.decode(constant, SMALL), 0.05, 0.01);

            // Random latents: every tile normalises with its own GroupNorm statistics and pads its own edges, which the random
            // tiny model turns into O(1) differences (outputs reach |x| ≈ 4); the bound states what tiling costs here.
            Tensor z = latents(4, 1, 16, 2, 6, 10);                 // 48×80 pixels: 2 rows × 4 columns of 32-pixel tiles
            Tensor full = vae.decode(z);
            Tiling spatialOnly = new Tiling(false, true, 32, 32, 8, 24, 24, 4);
            Tensor tiled = vae.decode(z, spatialOnly);
            assertArrayEquals(new long[] {1, 3, 5, 48, 80}, Tensors.shape(tiled));
            assertEquals(8, vae.plan(new long[] {1, 16, 2, 6, 10}, spatialOnly).passes());
            report("spatial (random latents)", full, tiled, RANDOM_MAX, RANDOM_MEAN);
        }
    }

    @Test
    void tilesAreCutCroppedAndBlendedAsDiffusersDoes() {
        try (PointerScope scope = new PointerScope()) {
            // spatial: 32-pixel tiles (4 latents) every 24 pixels (3 latents), blended over 8 pixels
            Tensor z = latents(8, 1, 16, 2, 6, 7);
            Tensor tiled = vae.decode(z, new Tiling(false, true, 32, 32, 8, 24, 24, 4));
            Tensor t00 = vae.decode(z.narrow(3, 0, 4).narrow(4, 0, 4));
            Tensor t01 = vae.decode(z.narrow(3, 0, 4).narrow(4, 3, 4));
            // the top-left tile's first 24×24 pixels are nobody's blend target: copied as decoded
            assertTrue(equal(tiled.narrow(3, 0, 24).narrow(4, 0, 24), t00.narrow(3, 0, 24).narrow(4, 0, 24)));
            // column 24 + x (x < 8) of the first row: t00[24 + x]·(1 − x/8) + t01[x]·(x/8), rows 0..23 not blended vertically
            for (int x = 0; x < 8; x++) {
                Tensor expected = t00.select(4, 24 + x).mul(new org.bytedeco.pytorch.Scalar(1 - x / 8.0))
                        .add(t01.select(4, x).mul(new org.bytedeco.pytorch.Scalar(x / 8.0))).narrow(3, 0, 24);
                assertTrue(equal(tiled.select(4, 24 + x).narrow(3, 0, 24), expected), "blended column " + (24 + x));
            }
            assertTrue(equal(tiled.narrow(3, 0, 24).narrow(4, 32, 16), t01.narrow(3, 0, 24).narrow(4, 8, 16)));

            // frame-wise: chunks of 16/4 + 1 = 5 latent frames every 12/4 = 3, blended over 16 − 12 = 4 frames
            Tensor v = latents(9, 1, 16, 7, 2, 2);
            Tensor chunked = vae.decode(v, Tiling.DIFFUSERS_DEFAULT);
            Tensor c0 = vae.decode(v.narrow(2, 0, 5));   // 17 frames
            Tensor c1 = vae.decode(v.narrow(2, 3, 4));   // 13 frames, the first dropped
            assertTrue(equal(chunked.narrow(2, 0, 13), c0.narrow(2, 0, 13)), "the first chunk's first 12 + 1 frames");
            for (int x = 0; x < 4; x++) {
                Tensor expected = c0.select(2, 13 + x).mul(new org.bytedeco.pytorch.Scalar(1 - x / 4.0))
                        .add(c1.select(2, 1 + x).mul(new org.bytedeco.pytorch.Scalar(x / 4.0)));
                assertTrue(equal(chunked.select(2, 13 + x), expected), "blended frame " + (13 + x));
            }
        }
    }

    @Test
    void inputsThatFitOneTileAreDecodedUntiledBitIdentically() {
        try (PointerScope scope = new PointerScope()) {
            Tensor z = latents(4, 1, 16, 3, 4, 6);                   // the golden size: within 256-pixel tiles and 16 frames
            assertTrue(equal(vae.decode(z), vae.decode(z, Tiling.ENABLED)));
            assertEquals(1, vae.plan(new long[] {1, 16, 3, 4, 6}, Tiling.ENABLED).passes());
        }
    }

    /** Tiling changes the numerics (per-tile GroupNorm statistics and attention, restarted causal padding, blended seams). */
    private static void report(String what, Tensor full, Tensor tiled, double maxTol, double meanTol) {
        double max = HunyuanVideoVaeGoldenTest.maxAbs(full, tiled), mean = HunyuanVideoVaeGoldenTest.meanAbs(full, tiled);
        System.out.printf("%s vs untiled: max_abs %.4f, mean_abs %.4f%n", what, max, mean);
        assertTrue(max > 0, what + ": a tiled decode that needs several tiles cannot be bit-identical");
        assertTrue(max < maxTol && mean < meanTol, what + " vs untiled: max_abs " + max + " (< " + maxTol + "), mean_abs " + mean + " (< " + meanTol + ")");
    }
}
