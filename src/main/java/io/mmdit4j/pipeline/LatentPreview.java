package io.mmdit4j.pipeline;

import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch.ScalarType;

import static org.bytedeco.pytorch.global.torch.linear;

/**
 * A cheap latent-to-RGB preview: a fixed linear map of the latent channels to RGB plus a bias, then {@code (rgb + 1)/2}
 * clamped to [0, 1], at the latent resolution, as ComfyUI's "latent2rgb" previews (its per-format factors, fitted on each
 * VAE's latents; no decoder runs). Input: normalised latents {@code [B, C, h, w]} as the transformer sees them.
 */
public final class LatentPreview {
    private final float[] factors; // [C][3] row-major
    private final float[] bias;
    private final int channels;

    public LatentPreview(float[][] factors, float[] bias) {
        this.channels = factors.length;
        this.factors = new float[channels * 3];
        for (int c = 0; c < channels; c++) {
            if (factors[c].length != 3) throw new IllegalArgumentException("latent-to-RGB factors need 3 columns");
            System.arraycopy(factors[c], 0, this.factors, 3 * c, 3);
        }
        if (bias.length != 3) throw new IllegalArgumentException("latent-to-RGB bias needs 3 values");
        this.bias = bias.clone();
    }

    /** {@code [B, C, h, w]} → {@code [B, 3, h, w]} float32 in [0, 1] on the CPU; owned by the caller. */
    public Tensor rgb(Tensor latents) {
        if (latents.dim() != 4 || latents.size(1) != channels) {
            throw new IllegalArgumentException("a preview needs latents [B, " + channels + ", h, w], got " + Tensors.shapeString(Tensors.shape(latents)));
        }
        try (PointerScope scope = new PointerScope()) {
            Tensor x = latents.to(new org.bytedeco.pytorch.Device("cpu"), ScalarType.Float).permute(0, 2, 3, 1);   // [B, h, w, C]
            Tensor w = Tensors.fromFloats(factors, channels, 3).t();                                              // [3, C]
            Tensor rgb = linear(x, w, new TensorOptional(Tensors.fromFloats(bias, 3)));                           // [B, h, w, 3]
            Tensor unit = rgb.add(new Scalar(1.0)).div(new Scalar(2.0)).clamp(new ScalarOptional(new Scalar(0.0)), new ScalarOptional(new Scalar(1.0)));
            return Tensors.keep(unit.permute(0, 3, 1, 2).contiguous());
        }
    }

    /** ComfyUI's factors for the 16-channel SD3 / SD3.5 VAE ({@code comfy/latent_formats.py}, {@code SD3}). */
    public static final LatentPreview SD3 = new LatentPreview(new float[][] {
            {-0.0922f, -0.0175f, 0.0749f}, {0.0311f, 0.0633f, 0.0954f}, {0.1994f, 0.0927f, 0.0458f}, {0.0856f, 0.0339f, 0.0902f},
            {0.0587f, 0.0272f, -0.0496f}, {-0.0006f, 0.1104f, 0.0309f}, {0.0978f, 0.0306f, 0.0427f}, {-0.0042f, 0.1038f, 0.1358f},
            {-0.0194f, 0.0020f, 0.0669f}, {-0.0488f, 0.0130f, -0.0268f}, {0.0922f, 0.0988f, 0.0951f}, {-0.0278f, 0.0524f, -0.0542f},
            {0.0332f, 0.0456f, 0.0895f}, {-0.0069f, -0.0030f, -0.0810f}, {-0.0596f, -0.0465f, -0.0293f}, {-0.1448f, -0.1463f, -0.1189f}},
            new float[] {0.2394f, 0.2135f, 0.1925f});

    /** ComfyUI's factors for the FLUX.1 VAE ({@code comfy/latent_formats.py}, {@code Flux}). */
    public static final LatentPreview FLUX = new LatentPreview(new float[][] {
            {-0.0346f, 0.0244f, 0.0681f}, {0.0034f, 0.0210f, 0.0687f}, {0.0275f, -0.0668f, -0.0433f}, {-0.0174f, 0.0160f, 0.0617f},
            {0.0859f, 0.0721f, 0.0329f}, {0.0004f, 0.0383f, 0.0115f}, {0.0405f, 0.0861f, 0.0915f}, {-0.0236f, -0.0185f, -0.0259f},
            {-0.0245f, 0.0250f, 0.1180f}, {0.1008f, 0.0755f, -0.0421f}, {-0.0515f, 0.0201f, 0.0011f}, {0.0428f, -0.0012f, -0.0036f},
            {0.0817f, 0.0765f, 0.0749f}, {-0.1264f, -0.0522f, -0.1103f}, {-0.0280f, -0.0881f, -0.0499f}, {-0.1262f, -0.0982f, -0.0778f}},
            new float[] {-0.0329f, -0.0718f, -0.0851f});
}
