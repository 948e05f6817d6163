package io.mmdit4j.golden;

import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.vae.AutoencoderKL;
import io.mmdit4j.vae.wan.AutoencoderKLWan;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Cases of diffusers {@code AutoencoderKLWan} (model from {@code model.diffusers_folder}):
 * <ul>
 *   <li>{@code wan_vae_decode}: {@code decoder_input = latents·latents_std/sigma_data + latents_mean}, {@code decoded} = the
 *       frame-by-frame causal decode clamped to [−1, 1], {@code video = clamp(decoded/2 + 0.5, 0, 1)} as {@code [B, F, 3, H, W]};</li>
 *   <li>{@code wan_vae_encode}: {@code video [B, 3, F, H, W]} → the posterior's {@code mean} and {@code std} (the chunked causal
 *       encode, then {@code quant_conv}), and {@code normalized_mean = (mean − latents_mean) / latents_std · sigma_data}.</li>
 * </ul>
 */
public final class WanVaeCases {
    private WanVaeCases() {}

    public static final CaseRunner DECODE = c -> CaseRunner.withModel(c, "diffusers_folder", model -> decode(c, model));

    public static final CaseRunner ENCODE = c -> CaseRunner.withModel(c, "diffusers_folder", model -> encode(c, model));

    private static List<CaseResult> encode(GoldenCase c, Path model) {
        DType compute = c.computeDtype();
        double sigmaData = c.params().path("sigma_data").asDouble(1.0);
        Map<String, Tensor> actual = new HashMap<>();
        try (AutoencoderKLWan vae = AutoencoderKLWan.load(model, compute, DeviceSpec.CPU);
             SafetensorsFile in = c.inputs(); SafetensorsFile out = c.outputs(); PointerScope scope = new PointerScope();
             AutoencoderKL.Encoded posterior = vae.encode(in.load("video"))) {
            actual.put("mean", Tensors.keep(posterior.mean()));
            actual.put("std", Tensors.keep(posterior.std()));
            actual.put("logvar", Tensors.keep(posterior.logvar()));
            actual.put("normalized_mean", vae.normalize(posterior.mean(), sigmaData));
            return Outputs.compare(c, c.name(), actual, out);
        } finally {
            Tensors.closeAll(actual.values());
        }
    }

    private static List<CaseResult> decode(GoldenCase c, Path model) {
        DType compute = c.computeDtype();
        double sigmaData = c.params().path("sigma_data").asDouble(1.0);
        try (AutoencoderKLWan vae = AutoencoderKLWan.load(model, compute, DeviceSpec.CPU)) {
            return VideoVaeDecode.compare(c, latents -> vae.denormalize(latents, sigmaData), vae::decode, vae::toVideo);
        }
    }
}
