package io.mmdit4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.mmdit4j.flux.FluxTransformer;
import io.mmdit4j.lora.LoraAdapter;
import io.mmdit4j.lora.LoraReport;
import io.mmdit4j.models.ModelRegistry;
import io.mmdit4j.sd3.Sd3Transformer;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code --lora file.safetensors[:scale]} (repeatable) and {@code --lora-strict} for {@code generate}: the LoRAs are
 * merged into the transformer in the order given and recorded in the PNG metadata ({@code loras}), so {@code --from}
 * repeats them when no {@code --lora} is given.
 */
final class LoraOptions {
    @Option(names = "--lora", paramLabel = "FILE[:SCALE]", description = "merge a LoRA (diffusers/PEFT or kohya naming) at SCALE (default 1) (repeatable)")
    List<String> specs = new ArrayList<>();

    @Option(names = "--lora-strict", description = "fail when a LoRA has keys that target nothing in the model (default: warn)")
    boolean strict;

    /** One requested LoRA. */
    record Spec(Path file, double scale) {}

    /**
     * The LoRAs to merge: the options', else the recorded image's, else the one the model's descriptor brings
     * ({@link #fromDescriptor}); files are checked to exist before any work.
     */
    List<Spec> resolve(JsonNode recorded, JsonNode defaults) {
        List<Spec> out = new ArrayList<>();
        if (specs.isEmpty() && recorded != null && recorded.has("loras")) {
            for (JsonNode l : recorded.path("loras")) out.add(new Spec(Path.of(l.path("file").asText()), l.path("scale").asDouble(1.0)));
        } else if (specs.isEmpty()) {
            out.addAll(fromDescriptor(defaults, ModelRegistry.standard().modelsRoot()));
        } else {
            for (String s : specs) out.add(parse(s));
        }
        for (Spec s : out) {
            if (!Files.isRegularFile(s.file())) throw new IllegalArgumentException("--lora: no such file: " + s.file());
        }
        return out;
    }

    boolean strict(JsonNode recorded) {
        return strict || (specs.isEmpty() && recorded != null && recorded.path("lora_strict").asBoolean(false));
    }

    /** {@code file} or {@code file:scale}; the scale is what follows the last colon when it is a number. */
    static Spec parse(String spec) {
        int colon = spec.lastIndexOf(':');
        if (colon > 0) {
            String tail = spec.substring(colon + 1);
            try {
                double scale = Double.parseDouble(tail);
                if (!Double.isFinite(scale)) throw new IllegalArgumentException("--lora " + spec + ": scale must be a finite number");
                return new Spec(Path.of(spec.substring(0, colon)), scale);
            } catch (NumberFormatException e) {
                // not a scale: a colon in the path
            }
        }
        return new Spec(Path.of(spec), 1.0);
    }

    /**
     * The LoRA a model descriptor brings ({@code defaults.lora}: {@code file} relative to MMDIT_MODELS or absolute,
     * {@code scale}, {@code hf_repo}), used when neither {@code --lora} nor a recorded image names any.
     */
    private static List<Spec> fromDescriptor(JsonNode defaults, Path modelsRoot) {
        JsonNode l = defaults.path("lora");
        if (!l.isObject()) return List.of();
        Path file = Path.of(l.path("file").asText(""));
        if (!file.isAbsolute()) {
            if (modelsRoot == null) {
                throw new IllegalArgumentException("this model needs the LoRA " + l.path("hf_repo").asText(file.toString()) + ": download it and set "
                        + "MMDIT_MODELS to the folder holding '" + file + "' (MMDIT_MODELS is not set), or give --lora FILE");
            }
            file = modelsRoot.resolve(file);
        }
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException("this model needs the LoRA " + l.path("hf_repo").asText("") + " at " + file
                    + ": no such file (download it there, or give --lora FILE)");
        }
        return List.of(new Spec(file, l.path("scale").asDouble(1.0)));
    }

    /** Reads and merges every LoRA, printing each report; the caller closes the adapters after the model. */
    static List<LoraAdapter> apply(List<Spec> specs, FluxTransformer transformer, boolean strict) {
        return apply(specs, (a, s) -> a.applyTo(transformer, s.scale(), strict));
    }

    static List<LoraAdapter> apply(List<Spec> specs, Sd3Transformer transformer, boolean strict) {
        return apply(specs, (a, s) -> a.applyTo(transformer, s.scale(), strict));
    }

    private static List<LoraAdapter> apply(List<Spec> specs, java.util.function.BiFunction<LoraAdapter, Spec, LoraReport> merge) {
        List<LoraAdapter> adapters = new ArrayList<>();
        try {
            for (Spec s : specs) {
                LoraAdapter a = LoraAdapter.read(s.file());
                adapters.add(a);
                LoraReport r = merge.apply(a, s);
                System.err.println("lora: " + r.summary());
            }
        } catch (RuntimeException e) {
            adapters.forEach(LoraAdapter::close);
            throw e;
        }
        return adapters;
    }

    static void record(ObjectNode m, List<Spec> specs, boolean strict) {
        if (specs.isEmpty()) return;
        ArrayNode a = m.putArray("loras");
        for (Spec s : specs) a.addObject().put("file", s.file().toString()).put("scale", s.scale());
        m.put("lora_strict", strict);
    }
}
