package io.mmdit4j.pipeline;

import io.mmdit4j.GoldenData;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The step callback's latent previews: ComfyUI's linear latent-to-RGB maps at the latent size, for FLUX (packed), SD3, HiDream, HunyuanVideo and COSMOS. */
class LatentPreviewTest {
    /** The map by hand: {@code clamp((Σ_c x_c·F[c][k] + b_k + 1)/2, 0, 1)}. */
    @Test
    void theMapIsTheFactorsAndBiasAsComfyUiApplies() {
        float[][] f = new float[16][3];
        for (int c = 0; c < 16; c++) for (int k = 0; k < 3; k++) f[c][k] = (c - 7) * 0.01f * (k + 1);
        LatentPreview p = new LatentPreview(f, new float[] {0.1f, -0.2f, 0.3f});
        float[] x = new float[16 * 2 * 3];
        for (int i = 0; i < x.length; i++) x[i] = (float) Math.sin(i);
        try (PointerScope scope = new PointerScope()) {
            float[] rgb = Tensors.toFloats(p.rgb(Tensors.fromFloats(x, 1, 16, 2, 3)));
            float[] bias = {0.1f, -0.2f, 0.3f};
            for (int k = 0; k < 3; k++) {
                for (int pix = 0; pix < 6; pix++) {
                    double v = bias[k];
                    for (int c = 0; c < 16; c++) v += x[c * 6 + pix] * f[c][k];
                    assertEquals(Math.min(1, Math.max(0, (v + 1) / 2)), rgb[k * 6 + pix], 1e-6);
                }
            }
        }
    }

    @Test
    void everyStepOfFluxAndSd3HasAPreviewAtTheLatentSize() {
        for (String model : List.of("flux-tiny-demo", GoldenData.root().resolve("sd3_pipeline/models/sd35-tiny-large").toString())) {
            List<long[]> shapes = new ArrayList<>();
            try (Pipeline pipe = Pipelines.load(model, LoadOptions.defaults());
                 GenerationResult r = pipe.generate(GenerationRequest.builder().prompt("a fox").size(64, 48).steps(2).maxSequenceLength(8).build(), step -> {
                     try (Tensor rgb = step.preview()) {
                         shapes.add(Tensors.shape(rgb));
                         float[] v = Tensors.toFloats(rgb);
                         for (float f : v) assertTrue(f >= 0 && f <= 1);
                     }
                     return true;
                 })) {
                assertEquals(2, shapes.size(), model);
                assertArrayEquals(new long[] {1, 3, 6, 8}, shapes.get(1), model + ": [B, 3, H/8, W/8]");
            }
        }
    }

    /** HunyuanVideo and COSMOS (Wan 2.1 VAE): the first latent frame's preview at every step, {@code [B, 3, H/8, W/8]}. */
    @Test
    void everyStepOfTheVideoVaeFamiliesHasAFirstFramePreview() {
        record Case(String model, GenerationRequest request, long[] shape) {}
        List<Case> cases = List.of(
                new Case("hunyuan-video-tiny-demo", GenerationRequest.builder().prompt("a cat").size(32, 48).frames(5).steps(2).maxSequenceLength(8).build(),
                        new long[] {1, 3, 6, 4}),
                new Case("cosmos-tiny-demo", GenerationRequest.builder().prompt("a cat").size(64, 48).steps(2).maxSequenceLength(8).build(),
                        new long[] {1, 3, 6, 8}));
        for (Case c : cases) {
            List<long[]> shapes = new ArrayList<>();
            try (Pipeline pipe = Pipelines.load(c.model(), LoadOptions.defaults());
                 GenerationResult r = pipe.generate(c.request(), step -> {
                     try (Tensor rgb = step.preview()) {
                         shapes.add(Tensors.shape(rgb));
                         for (float f : Tensors.toFloats(rgb)) assertTrue(f >= 0 && f <= 1);
                     }
                     return true;
                 })) {
                assertEquals(2, shapes.size(), c.model());
                for (long[] shape : shapes) assertArrayEquals(c.shape(), shape, c.model() + ": [B, 3, H/8, W/8]");
            }
        }
    }

    /** Latents on meta have no values: the preview is a meta tensor of the preview's shape (generate --device meta --preview). */
    @Test
    void metaLatentsGiveAMetaPreviewOfTheRightShape() {
        try (PointerScope scope = new PointerScope(); org.bytedeco.pytorch.Device meta = new org.bytedeco.pytorch.Device("meta")) {
            Tensor x = org.bytedeco.pytorch.global.torch.empty(new long[] {2, 16, 3, 4, 5}, new org.bytedeco.pytorch.TensorOptions(
                    org.bytedeco.pytorch.global.torch.ScalarType.Float).device(new org.bytedeco.pytorch.DeviceOptional(meta)), new org.bytedeco.pytorch.MemoryFormatOptional());
            Tensor rgb = LatentPreview.WAN21.firstFrameRgb(x);
            assertTrue(rgb.is_meta());
            assertArrayEquals(new long[] {2, 3, 4, 5}, Tensors.shape(rgb));
        }
    }

    /** The video map is the image map of latent frame 0. */
    @Test
    void aVideoPreviewIsTheFirstLatentFramesMap() {
        try (PointerScope scope = new PointerScope()) {
            Tensor x = org.bytedeco.pytorch.global.torch.randn(2, 16, 3, 4, 5);
            assertArrayEquals(Tensors.toFloats(LatentPreview.WAN21.rgb(x.select(2, 0).contiguous())), Tensors.toFloats(LatentPreview.WAN21.firstFrameRgb(x)));
            assertArrayEquals(new long[] {2, 3, 4, 5}, Tensors.shape(LatentPreview.HUNYUAN_VIDEO.firstFrameRgb(x)));
        }
    }

    /** What a preview costs at FLUX.1's 1024² (latents [1, 16, 128, 128]): printed for the README; bounded loosely. */
    @Test
    void aPreviewAt1024IsCheap() {
        try (PointerScope scope = new PointerScope()) {
            Tensor x = org.bytedeco.pytorch.global.torch.randn(1, 16, 128, 128);
            for (int i = 0; i < 5; i++) LatentPreview.FLUX.rgb(x).close(); // warm-up
            int n = 50;
            long t0 = System.nanoTime();
            for (int i = 0; i < n; i++) LatentPreview.FLUX.rgb(x).close();
            double ms = (System.nanoTime() - t0) / 1e6 / n;
            System.out.printf(java.util.Locale.ROOT, "latent preview of [1, 16, 128, 128] (1024x1024): %.2f ms%n", ms);
            assertTrue(ms < 200, "a preview took " + ms + " ms");
        }
    }
}
