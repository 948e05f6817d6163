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

    /**
     * {@code [B, C, h, w]} → {@code [B, 3, h, w]} float32 in [0, 1] on the CPU; owned by the caller. Latents on meta
     * (shapes only) give a meta preview of the right shape: there are no values to copy to the CPU.
     */
    public Tensor rgb(Tensor latents) {
        if (latents.dim() != 4 || latents.size(1) != channels) {
            throw new IllegalArgumentException("a preview needs latents [B, " + channels + ", h, w], got " + Tensors.shapeString(Tensors.shape(latents)));
        }
        if (latents.is_meta()) {
            try (PointerScope scope = new PointerScope(); org.bytedeco.pytorch.Device meta = new org.bytedeco.pytorch.Device("meta")) {
                return Tensors.keep(org.bytedeco.pytorch.global.torch.empty(new long[] {latents.size(0), 3, latents.size(2), latents.size(3)},
                        new org.bytedeco.pytorch.TensorOptions(ScalarType.Float).device(new org.bytedeco.pytorch.DeviceOptional(meta)),
                        new org.bytedeco.pytorch.MemoryFormatOptional()));
            }
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

    /** ComfyUI's factors for HunyuanVideo's causal 3-D VAE ({@code comfy/latent_formats.py}, {@code HunyuanVideo}); one latent frame at a time. */
    public static final LatentPreview HUNYUAN_VIDEO = new LatentPreview(new float[][] {
            {-0.0395f, -0.0331f, 0.0445f}, {0.0696f, 0.0795f, 0.0518f}, {0.0135f, -0.0945f, -0.0282f}, {0.0108f, -0.0250f, -0.0765f},
            {-0.0209f, 0.0032f, 0.0224f}, {-0.0804f, -0.0254f, -0.0639f}, {-0.0991f, 0.0271f, -0.0669f}, {-0.0646f, -0.0422f, -0.0400f},
            {-0.0696f, -0.0595f, -0.0894f}, {-0.0799f, -0.0208f, -0.0375f}, {0.1166f, 0.1627f, 0.0962f}, {0.1165f, 0.0432f, 0.0407f},
            {-0.2315f, -0.1920f, -0.1355f}, {-0.0270f, 0.0401f, -0.0821f}, {-0.0616f, -0.0997f, -0.0727f}, {0.0249f, -0.0469f, -0.1703f}},
            new float[] {0.0259f, -0.0192f, -0.0761f});

    /** ComfyUI's factors for the Wan 2.1 VAE that COSMOS-Predict2 uses ({@code comfy/latent_formats.py}, {@code Wan21}); one latent frame at a time. */
    public static final LatentPreview WAN21 = new LatentPreview(new float[][] {
            {-0.1299f, -0.1692f, 0.2932f}, {0.0671f, 0.0406f, 0.0442f}, {0.3568f, 0.2548f, 0.1747f}, {0.0372f, 0.2344f, 0.1420f},
            {0.0313f, 0.0189f, -0.0328f}, {0.0296f, -0.0956f, -0.0665f}, {-0.3477f, -0.4059f, -0.2925f}, {0.0166f, 0.1902f, 0.1975f},
            {-0.0412f, 0.0267f, -0.1364f}, {-0.1293f, 0.0740f, 0.1636f}, {0.0680f, 0.3019f, 0.1128f}, {0.0032f, 0.0581f, 0.0639f},
            {-0.1251f, 0.0927f, 0.1699f}, {0.0060f, -0.0633f, 0.0005f}, {0.3477f, 0.2275f, 0.2950f}, {0.1984f, 0.0913f, 0.1861f}},
            new float[] {-0.1835f, -0.0868f, -0.3360f});

    /**
     * Video latents {@code [B, C, T, h, w]}: the preview of latent frame 0 (the causal VAEs decode it alone into the
     * first video frame), {@code [B, 3, h, w]}.
     */
    public Tensor firstFrameRgb(Tensor latents) {
        if (latents.dim() != 5) throw new IllegalArgumentException("a video preview needs latents [B, C, T, h, w], got " + Tensors.shapeString(Tensors.shape(latents)));
        try (PointerScope scope = new PointerScope()) {
            return rgb(latents.select(2, 0));
        }
    }
}
