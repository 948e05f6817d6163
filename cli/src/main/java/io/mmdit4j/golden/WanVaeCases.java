package io.mmdit4j.golden;

import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.vae.wan.AutoencoderKLWan;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code wan_vae_decode} cases (diffusers {@code AutoencoderKLWan}, model from {@code model.diffusers_folder}):
 * {@code decoder_input = latents·latents_std/sigma_data + latents_mean}, {@code decoded} = the frame-by-frame causal decode
 * clamped to [−1, 1], {@code video = clamp(decoded/2 + 0.5, 0, 1)} as {@code [B, F, 3, H, W]}.
 */
public final class WanVaeCases {
    private WanVaeCases() {}

    public static final CaseRunner DECODE = WanVaeCases::run;

    private static List<CaseResult> run(GoldenCase c) {
        String folder = c.spec().path("model").path("diffusers_folder").asText("");
        if (folder.isEmpty()) return List.of(CaseResult.error(c.name(), "-", "case names no model.diffusers_folder"));
        Path model = c.resolve(folder);
        if (!Files.exists(model)) return List.of(CaseResult.error(c.name(), "-", "model not found: " + model));
        DType compute = DType.parse(c.spec().path("compute_dtype").asText("float32"));
        double sigmaData = c.params().path("sigma_data").asDouble(1.0);
        Map<String, Tensor> actual = new HashMap<>();
        try (AutoencoderKLWan vae = AutoencoderKLWan.load(model, compute, DeviceSpec.CPU);
             SafetensorsFile in = c.inputs(); SafetensorsFile out = c.outputs(); PointerScope scope = new PointerScope()) {
            Tensor z = vae.denormalize(in.load("latents"), sigmaData);
            actual.put("decoder_input", z);
            Tensor decoded = vae.decode(z);
            actual.put("decoded", decoded);
            actual.put("video", vae.toVideo(decoded));
            return Outputs.compare(c, c.name(), actual, out);
        } catch (RuntimeException e) {
            return List.of(CaseResult.failed(c.name(), "-", e));
        } finally {
            Tensors.closeAll(actual.values());
        }
    }
}
