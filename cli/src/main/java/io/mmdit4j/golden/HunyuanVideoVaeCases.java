package io.mmdit4j.golden;

import io.mmdit4j.hunyuan.vae.AutoencoderKLHunyuanVideo;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;

import java.nio.file.Path;
import java.util.List;

/**
 * {@code hunyuan_video_vae_decode} cases (diffusers {@code AutoencoderKLHunyuanVideo}, model from
 * {@code model.diffusers_folder}): {@code latents} → {@code decoder_input = latents / scaling_factor},
 * {@code decoded} = raw decoder output (untiled, as the cases' sizes never trigger tiling),
 * {@code video = clamp(decoded/2 + 0.5, 0, 1)} permuted to {@code [B, F, 3, H, W]}.
 */
public final class HunyuanVideoVaeCases {
    private HunyuanVideoVaeCases() {}

    public static final CaseRunner DECODE = HunyuanVideoVaeCases::run;

    private static List<CaseResult> run(GoldenCase c) {
        return CaseRunner.withModel(c, "diffusers_folder", model -> decode(c, model));
    }

    private static List<CaseResult> decode(GoldenCase c, Path model) {
        DType compute = c.computeDtype();
        try (AutoencoderKLHunyuanVideo vae = AutoencoderKLHunyuanVideo.load(model, null, compute, DeviceSpec.CPU)) {
            return VideoVaeDecode.compare(c, vae::unscaleLatents, vae::decode, vae::toVideo);
        }
    }
}
