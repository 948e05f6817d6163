package io.mmdit4j.golden;

import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.vae.wan.AutoencoderKLWan;

import java.nio.file.Path;
import java.util.List;

/**
 * {@code wan_vae_decode} cases (diffusers {@code AutoencoderKLWan}, model from {@code model.diffusers_folder}):
 * {@code decoder_input = latents·latents_std/sigma_data + latents_mean}, {@code decoded} = the frame-by-frame causal decode
 * clamped to [−1, 1], {@code video = clamp(decoded/2 + 0.5, 0, 1)} as {@code [B, F, 3, H, W]}.
 */
public final class WanVaeCases {
    private WanVaeCases() {}

    public static final CaseRunner DECODE = WanVaeCases::run;

    private static List<CaseResult> run(GoldenCase c) {
        return CaseRunner.withModel(c, "diffusers_folder", model -> decode(c, model));
    }

    private static List<CaseResult> decode(GoldenCase c, Path model) {
        DType compute = c.computeDtype();
        double sigmaData = c.params().path("sigma_data").asDouble(1.0);
        try (AutoencoderKLWan vae = AutoencoderKLWan.load(model, compute, DeviceSpec.CPU)) {
            return VideoVaeDecode.compare(c, latents -> vae.denormalize(latents, sigmaData), vae::decode, vae::toVideo);
        }
    }
}
