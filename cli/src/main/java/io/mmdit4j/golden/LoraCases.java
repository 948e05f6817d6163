package io.mmdit4j.golden;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.mmdit4j.flux.FluxInputs;
import io.mmdit4j.flux.FluxTransformer;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.lora.LoraAdapter;
import io.mmdit4j.lora.LoraReport;
import io.mmdit4j.nn.Linear;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.sd3.Sd3Transformer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * {@code lora} cases: a LoRA file ({@code model.lora_file}) merged at {@code params.lora_scale} into the FLUX or SD3
 * transformer of {@code model.diffusers_folder} (told apart by its config's {@code _class_name}). Outputs: the forward
 * without and with the LoRA, the merged weight of every targeted Linear ({@code merged.<module>.weight}) and the
 * diffusers form of the LoRA ({@code converted.<key>}).
 */
public final class LoraCases implements CaseRunner {

    @Override
    public List<CaseResult> run(GoldenCase c) {
        JsonNode model = c.spec().path("model");
        if (!model.hasNonNull("diffusers_folder") || !model.hasNonNull("lora_file")) {
            return List.of(CaseResult.error(c.name(), "-", "case names no model.diffusers_folder and model.lora_file"));
        }
        Path folder = c.resolve(model.get("diffusers_folder").asText());
        if (!Files.exists(folder)) return List.of(CaseResult.error(c.name(), "-", "model not found: " + folder));
        return isSd3(folder) ? runSd3(c, c.name(), folder) : runFlux(c, c.name(), folder, null);
    }

    private static boolean isSd3(Path folder) {
        Path config = folder.resolve("config.json");
        if (!Files.isRegularFile(config)) return false;
        try {
            return new ObjectMapper().readTree(Files.readString(config)).path("_class_name").asText("").startsWith("SD3");
        } catch (IOException e) {
            return false; // the loader reports the unreadable config
        }
    }

    private static DType compute(GoldenCase c) {
        return DType.parse(c.spec().path("compute_dtype").asText("float32"));
    }

    /** Runs a FLUX case on the model at {@code modelPath} (a diffusers folder or a BFL file); public for tests. */
    public static List<CaseResult> runFlux(GoldenCase c, String name, Path modelPath, int[] axes) {
        try (FluxTransformer model = FluxTransformer.load(modelPath, compute(c), axes);
             LoraAdapter lora = LoraAdapter.read(c.resolve(c.spec().path("model").path("lora_file").asText()));
             SafetensorsFile in = c.inputs(); SafetensorsFile out = c.outputs(); PointerScope scope = new PointerScope()) {
            FluxInputs inputs = new FluxInputs(in.load("hidden_states"), in.load("encoder_hidden_states"), in.load("pooled_projections"),
                    in.load("timestep"), model.config().guidanceEmbeds() ? in.load("guidance") : null, in.load("img_ids"), in.load("txt_ids"));
            return compare(c, name, out, () -> model.forward(inputs), s -> lora.applyTo(model, s, true), model.linears(),
                    () -> lora.toDiffusers(model));
        } catch (RuntimeException e) {
            return List.of(CaseResult.failed(name, "-", e));
        }
    }

    /** Runs an SD3 case on the model at {@code modelPath}. */
    public static List<CaseResult> runSd3(GoldenCase c, String name, Path modelPath) {
        try (Sd3Transformer model = Sd3Transformer.load(modelPath, compute(c));
             LoraAdapter lora = LoraAdapter.read(c.resolve(c.spec().path("model").path("lora_file").asText()));
             SafetensorsFile in = c.inputs(); SafetensorsFile out = c.outputs(); PointerScope scope = new PointerScope()) {
            Tensor hidden = in.load("hidden_states"), text = in.load("encoder_hidden_states"), pooled = in.load("pooled_projections"),
                    timestep = in.load("timestep");
            return compare(c, name, out, () -> model.forward(hidden, text, pooled, timestep), s -> lora.applyTo(model, s, true),
                    model.linears(), () -> lora.toDiffusers(model));
        } catch (RuntimeException e) {
            return List.of(CaseResult.failed(name, "-", e));
        }
    }

    private static List<CaseResult> compare(GoldenCase c, String name, SafetensorsFile out, Supplier<Tensor> forward,
                                            java.util.function.DoubleFunction<LoraReport> apply, Map<String, Linear> linears,
                                            Supplier<Map<String, Tensor>> converted) {
        Map<String, Tensor> actual = new HashMap<>();
        try {
            actual.put("sample_without_lora", forward.get());
            LoraReport report = apply.apply(c.params().path("lora_scale").asDouble(1.0));
            actual.put("sample", forward.get());
            for (String t : report.targets()) actual.put("merged." + t + ".weight", Tensors.keep(linears.get(t).weight().clone()));
            converted.get().forEach((k, v) -> actual.put("converted." + k, v));
            return Outputs.compare(c, name, actual, out);
        } finally {
            Tensors.closeAll(actual.values());
        }
    }
}
