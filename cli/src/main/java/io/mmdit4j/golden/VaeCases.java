package io.mmdit4j.golden;

import com.fasterxml.jackson.databind.JsonNode;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.vae.AutoencoderKL;
import io.mmdit4j.vae.VaeConfig;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code vae_decode} and {@code vae_encode} cases (diffusers {@code AutoencoderKL}). The model comes from the
 * case's diffusers folder ({@code model.diffusers_folder}, or {@code hf_folder} / {@code folder}) and, when the
 * case names one, from a BFL/LDM single file ({@code model.bfl_checkpoint}, reported as {@code <case>[bfl]}, with
 * the case's {@code config} since GroupNorm groups and scaling are not in such files).
 *
 * <ul>
 *   <li>decode: {@code latents} → {@code decoder_input = latents / scaling_factor + shift_factor},
 *       {@code decoded} = raw decoder output, {@code image = clamp(decoded/2 + 0.5, 0, 1)};</li>
 *   <li>encode: {@code image} → posterior {@code mean}, {@code std}, {@code logvar},
 *       {@code normalized_mean = (mean - shift_factor) · scaling_factor}; with a {@code noise} input also
 *       {@code sample = mean + std·noise} and {@code normalized_sample}.</li>
 * </ul>
 */
public final class VaeCases {
    private VaeCases() {}

    public static final CaseRunner DECODE = c -> runAll(c, (vae, in, actual) -> {
        Tensor latents = in.load("latents");
        Tensor z = vae.unscaleLatents(latents);
        actual.put("decoder_input", z);
        Tensor decoded = vae.decode(z);
        actual.put("decoded", decoded);
        actual.put("image", vae.toImage(decoded));
    });

    public static final CaseRunner ENCODE = c -> runAll(c, (vae, in, actual) -> {
        try (AutoencoderKL.Encoded posterior = vae.encode(in.load("image"))) {
            actual.put("mean", Tensors.keep(posterior.mean()));
            actual.put("std", Tensors.keep(posterior.std()));
            actual.put("logvar", Tensors.keep(posterior.logvar()));
            actual.put("normalized_mean", vae.scaleLatents(posterior.mean()));
            if (in.info("noise") != null) {
                Tensor sample = posterior.sample(in.load("noise"));
                actual.put("sample", sample);
                actual.put("normalized_sample", vae.scaleLatents(sample));
            }
        }
    });

    interface Body {
        void run(AutoencoderKL vae, SafetensorsFile inputs, Map<String, Tensor> actual);
    }

    private static List<CaseResult> runAll(GoldenCase c, Body body) {
        JsonNode model = c.spec().path("model");
        DType compute = DType.parse(c.spec().path("compute_dtype").asText("float32"));
        List<CaseResult> results = new ArrayList<>();
        for (String field : new String[] {"diffusers_folder", "hf_folder", "folder"}) {
            if (model.hasNonNull(field)) {
                results.addAll(runFrom(c, c.name(), c.resolve(model.get(field).asText()), null, compute, body));
                break;
            }
        }
        if (model.hasNonNull("bfl_checkpoint")) {
            VaeConfig config = c.spec().path("config").isObject() ? VaeConfig.fromJson(c.spec().get("config"), c.dir().resolve("case.json").toString()) : null;
            results.addAll(runFrom(c, c.name() + "[bfl]", c.resolve(model.get("bfl_checkpoint").asText()), config, compute, body));
        }
        if (results.isEmpty()) results.add(CaseResult.error(c.name(), "-", "case names no model (diffusers_folder / bfl_checkpoint)"));
        return results;
    }

    private static List<CaseResult> runFrom(GoldenCase c, String name, Path modelPath, VaeConfig config, DType compute, Body body) {
        if (!Files.exists(modelPath)) return List.of(CaseResult.error(name, "-", "model not found: " + modelPath));
        Map<String, Tensor> actual = new HashMap<>();
        try (AutoencoderKL vae = AutoencoderKL.load(modelPath, config, compute, DeviceSpec.CPU);
             SafetensorsFile in = c.inputs(); SafetensorsFile out = c.outputs(); PointerScope scope = new PointerScope()) {
            body.run(vae, in, actual);
            return Outputs.compare(c, name, actual, out);
        } catch (RuntimeException e) {
            return List.of(CaseResult.failed(name, "-", e));
        } finally {
            Tensors.closeAll(actual.values());
        }
    }
}
