package io.mmdit4j.hunyuan.vae;

import io.mmdit4j.GoldenData;
import io.mmdit4j.hunyuan.vae.AutoencoderKLHunyuanVideo.DecodePlan;
import io.mmdit4j.hunyuan.vae.AutoencoderKLHunyuanVideo.Tiling;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Scopes;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.runtime.Torch;
import io.mmdit4j.vae.TiledDecode;
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
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.UnaryOperator;

import static org.bytedeco.pytorch.global.torch.createCPUGenerator;
import static org.bytedeco.pytorch.global.torch.equal;
import static org.bytedeco.pytorch.global.torch.randn;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Frame-wise and spatially tiled decoding (diffusers' {@code _temporal_tiled_decode} / {@code tiled_decode}) on the
 * tiny golden model: output shapes and frame counts, bit-identity with diffusers' tiling written out on plain arrays
 * over tiles decoded alone, tiled = untiled up to blend rounding for a decoder that sees only its own latent,
 * bit-identity when everything fits in one tile, and the decode plan.
 *
 * <p>The VAE's own tiled decode is not compared with its untiled decode beyond the stated characterisation of
 * {@link #RANDOM_MAX}: each tile has its own GroupNorm statistics and mid-block attention over all its pixels, so no
 * output pixel is independent of the cut, and how far the two are apart depends on the model, the latents and on the
 * rounding of the CPU's kernels (constant latents, constant in exact arithmetic, differ by 0.01 to 0.3 between CPUs
 * and {@code ATEN_CPU_CAPABILITY} settings, each GroupNorm of a near-constant input amplifying the rounding of its
 * mean up to 1/sqrt(eps) = 1000 times).
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

    /**
     * The tiled decode is diffusers' tiling of tiles decoded alone: {@link #writtenOut} repeats it on plain float arrays
     * (each tile decoded by the untiled decoder, blended in place in diffusers' order with float32 weights, cut and
     * joined). The tile decodes are the same computation and the blends the same IEEE float32 products and sums, so the
     * two agree bit for bit on any CPU, whatever its kernels round.
     */
    @Test
    void tiledDecodeIsItsTilesDecodedAloneAndBlendedAsDiffusersDoes() {
        try (PointerScope scope = new PointerScope()) {
            // spatial and frame-wise: 3 chunks × (2 × 3) tiles, blended over 8 pixels and 4 frames
            assertEquals(3 * 6, vae.plan(new long[] {1, 16, 3, 6, 7}, SMALL).passes(), "3 chunks × (2 × 3) tiles");
            assertTiledAsWrittenOut(latents(3, 1, 16, 3, 6, 7), SMALL, new long[] {1, 3, 9, 48, 56});

            // spatial only: 2 rows × 4 columns of 32-pixel tiles every 24 pixels
            Tiling spatialOnly = new Tiling(false, true, 32, 32, 8, 24, 24, 4);
            assertEquals(8, vae.plan(new long[] {1, 16, 2, 6, 10}, spatialOnly).passes());
            assertTiledAsWrittenOut(latents(4, 1, 16, 2, 6, 10), spatialOnly, new long[] {1, 3, 5, 48, 80});

            // blends of 16 rows, 20 columns (wider than the 16 kept) and 6 frames (weights k/20, k/6 are not dyadic),
            // edge tiles of one latent, blends shortened by them (8), and a last chunk of one latent frame, which is
            // empty once its first decoded frame is dropped
            Tiling uneven = new Tiling(true, true, 40, 36, 10, 24, 16, 4);
            assertEquals(4 * 9, vae.plan(new long[] {1, 16, 4, 7, 5}, uneven).passes(), "4 chunks × (3 × 3) tiles");
            assertTiledAsWrittenOut(latents(5, 1, 16, 4, 7, 5), uneven, new long[] {1, 3, 13, 56, 40});
        }
    }

    /**
     * Tiled vs untiled where the difference is explainable: with a decoder whose output pixels depend on their own
     * latent only (8× nearest upsampling), every tile decodes each latent as the whole input does, so a tiled decode is
     * the untiled one except for blend rounding. A blend {@code fl(fl(a·w) + fl(b·(1 − w)))} with dyadic weights
     * (k/8, exact) of two values within relative ε of v is within ε + 2u of v (u = 2^-24, up to O(u²)); a pixel's value
     * goes through at most three blends (the upper tile's horizontal one, done in place before, then its own vertical
     * and horizontal ones), so |tiled − untiled| ≤ (6u + O(u²))·|v| < 7u·|v|. Wrong tile origins, crops or blend
     * partners move values by O(1).
     */
    @Test
    void tilingADecoderThatSeesOnlyItsOwnLatentChangesNothingButBlendRounding() {
        try (PointerScope scope = new PointerScope()) {
            UnaryOperator<Tensor> nearest8 = t -> Scopes.owned(() -> {
                long b = t.size(0), c = t.size(1), f = t.size(2), h = t.size(3), w = t.size(4);
                return t.unsqueeze(4).unsqueeze(6).expand(new long[] {b, c, f, h, 8, w, 8}).reshape(new long[] {b, c, f, 8 * h, 8 * w});
            });
            Tensor z = latents(6, 1, 3, 2, 7, 9);                    // 3 rows (4, 4, 1 latents) × 3 columns (4, 4, 3)
            Tensor tiled = TiledDecode.spatial(z, 3, 4, 4, 3, 3, 8, 8, 24, 24, nearest8).narrow(3, 0, 56).narrow(4, 0, 72);
            Tensor untiled = Scopes.adopt(nearest8.apply(z));
            assertArrayEquals(Tensors.shape(untiled), Tensors.shape(tiled));
            float[] a = Tensors.toFloats(untiled), b = Tensors.toFloats(tiled);
            double bound = 7 * 0x1p-24, worst = 0;
            for (int i = 0; i < a.length; i++) {
                double d = Math.abs((double) a[i] - b[i]);
                assertTrue(d <= bound * Math.abs(a[i]), "element " + i + ": tiled " + b[i] + ", untiled " + a[i]);
                worst = Math.max(worst, d / Math.abs(a[i]));
            }
            System.out.printf("nearest-8 decoder, tiled vs untiled: max relative difference %.3g (bound %.3g)%n", worst, bound);
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

    /** Decodes {@code z} with {@code tiling} and compares it bit for bit with {@link #writtenOut}. */
    private static void assertTiledAsWrittenOut(Tensor z, Tiling tiling, long[] shape) {
        Video expected = writtenOut(z, tiling);
        float[] got;
        try (Tensor tiled = vae.decode(z, tiling)) {
            assertArrayEquals(shape, Tensors.shape(tiled));
            got = Tensors.toFloats(tiled);
        }
        assertArrayEquals(shape, expected.shape(), "written-out tiling");
        int differ = 0, first = -1;
        double max = 0;
        for (int i = 0; i < got.length; i++) {
            if (Float.floatToRawIntBits(got[i]) != Float.floatToRawIntBits(expected.v[i])) {
                if (differ++ == 0) first = i;
                max = Math.max(max, Math.abs((double) got[i] - expected.v[i]));
            }
        }
        if (differ > 0) {
            fail(tiling + ": " + differ + " of " + got.length + " values differ from diffusers' tiling written out (max abs " + max
                    + "), the first at [b, c, f, y, x] = " + Arrays.toString(expected.coordinates(first)) + ": " + got[first]
                    + " instead of " + expected.v[first]);
        }
    }

    // ---------------------------------------------------------------- diffusers' tiling, written out

    /** diffusers' {@code AutoencoderKLHunyuanVideo._decode}: frame-wise first, then spatial tiling, else one pass. */
    private static Video writtenOut(Tensor z, Tiling t) {
        if (t.framewise() && z.size(2) > t.minFrames() / 4) return writtenOutTemporal(z, t);
        if (t.spatial() && (z.size(4) > t.minWidth() / 8 || z.size(3) > t.minHeight() / 8)) return writtenOutSpatial(z, t);
        return decodedAlone(z);
    }

    /** {@code _temporal_tiled_decode}. */
    private static Video writtenOutTemporal(Tensor z, Tiling t) {
        int frames = (int) z.size(2);
        int tileF = t.minFrames() / 4, strideF = t.strideFrames() / 4, blendF = t.minFrames() - t.strideFrames();
        List<Video> row = new ArrayList<>();
        for (int i = 0; i < frames; i += strideF) {
            Tensor tile = z.narrow(2, i, Math.min(tileF + 1, frames - i));         // z[:, :, i : i + tileF + 1]
            boolean tiled = t.spatial() && (tile.size(4) > t.minWidth() / 8 || tile.size(3) > t.minHeight() / 8);
            Video decoded = tiled ? writtenOutSpatial(tile, t) : decodedAlone(tile);
            row.add(i > 0 ? decoded.slice(2, 1, decoded.size(2) - 1) : decoded);  // decoded[:, :, 1:]
        }
        List<Video> result = new ArrayList<>();
        for (int i = 0; i < row.size(); i++) {
            Video tile = row.get(i);
            if (i > 0) blend(row.get(i - 1), tile, blendF, 2);
            int keep = i > 0 ? t.strideFrames() : t.strideFrames() + 1;
            result.add(tile.slice(2, 0, Math.min(keep, tile.size(2))));
        }
        Video dec = Video.cat(result, 2);
        return dec.slice(2, 0, Math.min((frames - 1) * 4 + 1, dec.size(2)));
    }

    /** {@code tiled_decode}. */
    private static Video writtenOutSpatial(Tensor z, Tiling t) {
        int height = (int) z.size(3), width = (int) z.size(4);
        int tileH = t.minHeight() / 8, tileW = t.minWidth() / 8, strideH = t.strideHeight() / 8, strideW = t.strideWidth() / 8;
        int blendH = t.minHeight() - t.strideHeight(), blendW = t.minWidth() - t.strideWidth();
        List<List<Video>> rows = new ArrayList<>();
        for (int i = 0; i < height; i += strideH) {
            List<Video> row = new ArrayList<>();
            for (int j = 0; j < width; j += strideW) {
                row.add(decodedAlone(z.narrow(3, i, Math.min(tileH, height - i)).narrow(4, j, Math.min(tileW, width - j))));
            }
            rows.add(row);
        }
        List<Video> resultRows = new ArrayList<>();
        for (int i = 0; i < rows.size(); i++) {
            List<Video> row = rows.get(i), resultRow = new ArrayList<>();
            for (int j = 0; j < row.size(); j++) {
                Video tile = row.get(j);
                if (i > 0) blend(rows.get(i - 1).get(j), tile, blendH, 3);
                if (j > 0) blend(row.get(j - 1), tile, blendW, 4);
                Video kept = tile.slice(3, 0, Math.min(t.strideHeight(), tile.size(3)));
                resultRow.add(kept.slice(4, 0, Math.min(t.strideWidth(), kept.size(4))));
            }
            resultRows.add(Video.cat(resultRow, 4));
        }
        Video dec = Video.cat(resultRows, 3);
        dec = dec.slice(3, 0, Math.min(height * 8, dec.size(3)));
        return dec.slice(4, 0, Math.min(width * 8, dec.size(4)));
    }

    /**
     * diffusers' {@code blend_t} / {@code blend_v} / {@code blend_h} on axis 2 / 3 / 4, in place on {@code b}:
     * {@code b[y] = a[-e + y] * (1 - y / e) + b[y] * (y / e)} for {@code y < e = min(a, b, extent)}, the Python-float
     * weights applied to a float32 tensor as float32 scalars.
     */
    private static void blend(Video a, Video b, int extent, int axis) {
        int e = Math.min(Math.min(a.size(axis), b.size(axis)), extent);
        int[] p = new int[5];
        for (int i = 0; i < b.v.length; i++) {
            int[] q = b.coordinates(i);
            int y = q[axis];
            if (y >= e) continue;
            System.arraycopy(q, 0, p, 0, 5);
            p[axis] = a.size(axis) - e + y;
            float wa = (float) (1 - (double) y / e), wb = (float) ((double) y / e);
            b.v[i] = a.v[a.index(p)] * wa + b.v[i] * wb;
        }
    }

    /** The untiled decoder on one tile, as plain floats. */
    private static Video decodedAlone(Tensor tile) {
        try (Tensor decoded = vae.decode(tile)) {
            return new Video(Tensors.shape(decoded), Tensors.toFloats(decoded));
        }
    }

    /** A {@code [B, C, F, H, W]} video as a row-major float array. */
    private static final class Video {
        final int[] dims;
        final float[] v;

        Video(long[] shape, float[] v) {
            this.dims = Arrays.stream(shape).mapToInt(Math::toIntExact).toArray();
            this.v = v;
        }

        int size(int axis) { return dims[axis]; }

        long[] shape() { return Arrays.stream(dims).asLongStream().toArray(); }

        int index(int[] p) {
            int i = 0;
            for (int d = 0; d < 5; d++) i = i * dims[d] + p[d];
            return i;
        }

        int[] coordinates(int i) {
            int[] p = new int[5];
            for (int d = 4; d >= 0; d--) {
                p[d] = i % dims[d];
                i /= dims[d];
            }
            return p;
        }

        /** A copy of positions {@code [start, start + n)} along {@code axis}. */
        Video slice(int axis, int start, int n) {
            long[] shape = shape();
            shape[axis] = n;
            Video out = new Video(shape, new float[Math.toIntExact(Arrays.stream(shape).reduce(1, (x, y) -> x * y))]);
            for (int i = 0; i < out.v.length; i++) {
                int[] p = out.coordinates(i);
                p[axis] += start;
                out.v[i] = v[index(p)];
            }
            return out;
        }

        /** {@code torch.cat(parts, axis)}. */
        static Video cat(List<Video> parts, int axis) {
            long[] shape = parts.get(0).shape();
            shape[axis] = parts.stream().mapToLong(p -> p.size(axis)).sum();
            Video out = new Video(shape, new float[Math.toIntExact(Arrays.stream(shape).reduce(1, (x, y) -> x * y))]);
            int offset = 0;
            for (Video part : parts) {
                for (int i = 0; i < part.v.length; i++) {
                    int[] p = part.coordinates(i);
                    p[axis] += offset;
                    out.v[out.index(p)] = part.v[i];
                }
                offset += part.size(axis);
            }
            return out;
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
