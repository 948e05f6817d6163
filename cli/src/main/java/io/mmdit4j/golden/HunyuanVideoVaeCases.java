package io.mmdit4j.golden;

import com.fasterxml.jackson.databind.JsonNode;
import io.mmdit4j.hunyuan.vae.AutoencoderKLHunyuanVideo;
import io.mmdit4j.hunyuan.vae.AutoencoderKLHunyuanVideo.Tiling;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.vae.AutoencoderKL;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * HunyuanVideo VAE cases (diffusers {@code AutoencoderKLHunyuanVideo}, model from {@code model.diffusers_folder}):
 * <ul>
 *   <li>{@code hunyuan_video_vae_decode}: {@code latents} → {@code decoder_input = latents / scaling_factor},
 *       {@code decoded} = raw decoder output (untiled, as the cases' sizes never trigger tiling),
 *       {@code video = clamp(decoded/2 + 0.5, 0, 1)} permuted to {@code [B, F, 3, H, W]};</li>
 *   <li>{@code hunyuan_video_vae_encode}: {@code video} → posterior {@code mean}, {@code std} (and {@code logvar} where
 *       the case has it), {@code normalized_mean = mean · scaling_factor}, with the model state the case describes:
 *       diffusers' defaults (frame-wise encoding on, spatial tiling off), and {@code enable_tiling(...)} when
 *       {@code params.tiling} is true, its sizes from {@code params.tiling_settings} (the rest at diffusers' defaults).</li>
 * </ul>
 */
public final class HunyuanVideoVaeCases {
    private HunyuanVideoVaeCases() {}

    public static final CaseRunner DECODE = HunyuanVideoVaeCases::run;

    public static final CaseRunner ENCODE = c -> CaseRunner.withModel(c, "diffusers_folder", model -> encode(c, model));

    private static List<CaseResult> run(GoldenCase c) {
        return CaseRunner.withModel(c, "diffusers_folder", model -> decode(c, model));
    }

    private static List<CaseResult> decode(GoldenCase c, Path model) {
        DType compute = c.computeDtype();
        try (AutoencoderKLHunyuanVideo vae = AutoencoderKLHunyuanVideo.load(model, null, compute, DeviceSpec.CPU)) {
            return VideoVaeDecode.compare(c, vae::unscaleLatents, vae::decode, vae::toVideo);
        }
    }

    private static List<CaseResult> encode(GoldenCase c, Path model) {
        Tiling tiling = tiling(c.params());
        Map<String, Tensor> actual = new HashMap<>();
        try (AutoencoderKLHunyuanVideo vae = AutoencoderKLHunyuanVideo.load(model, null, c.computeDtype(), DeviceSpec.CPU);
             SafetensorsFile in = c.inputs(); SafetensorsFile out = c.outputs(); PointerScope scope = new PointerScope();
             AutoencoderKL.Encoded posterior = vae.encode(in.load("video"), tiling)) {
            actual.put("mean", Tensors.keep(posterior.mean()));
            actual.put("std", Tensors.keep(posterior.std()));
            actual.put("logvar", Tensors.keep(posterior.logvar()));
            actual.put("normalized_mean", vae.scaleLatents(posterior.mean()));
            return Outputs.compare(c, c.name(), actual, out);
        } finally {
            Tensors.closeAll(actual.values());
        }
    }

    /** The model's tiling state for a case: diffusers' defaults, {@code enable_tiling(**tiling_settings)} when {@code tiling}. */
    static Tiling tiling(JsonNode params) {
        Tiling d = Tiling.DIFFUSERS_DEFAULT;
        if (!params.path("tiling").asBoolean(false)) return d;
        JsonNode s = params.path("tiling_settings");
        return new Tiling(d.framewise(), true, s.path("tile_sample_min_height").asInt(d.minHeight()), s.path("tile_sample_min_width").asInt(d.minWidth()),
                s.path("tile_sample_min_num_frames").asInt(d.minFrames()), s.path("tile_sample_stride_height").asInt(d.strideHeight()),
                s.path("tile_sample_stride_width").asInt(d.strideWidth()), s.path("tile_sample_stride_num_frames").asInt(d.strideFrames()));
    }
}
