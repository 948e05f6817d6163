package io.mmdit4j.pipeline;

import com.fasterxml.jackson.databind.JsonNode;
import io.mmdit4j.guidance.GuidanceDefaults;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.guidance.Preset;
import io.mmdit4j.lora.LoraSpec;
import io.mmdit4j.models.ModelDescriptor;
import io.mmdit4j.runtime.DType;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What a model generates when a request leaves something unset: size, steps, text length, compute dtype, option values
 * (e.g. FLUX.1-dev's embedded guidance 3.5, SD3.5's CFG 3.5), guidance recommendation and presets, and the LoRA a recipe
 * brings. A family gives its own; a model descriptor's {@code defaults}, {@code guidance} and {@code recommended_guidance}
 * replace them ({@link #withDescriptor}).
 */
public record GenerationDefaults(int width, int height, int steps, int maxSequenceLength, DType dtype,
                                 Map<Class<? extends GenerationOption>, GenerationOption> options, GuidanceDefaults guidance, List<LoraSpec> loras,
                                 String lorasUnavailable) {
    public GenerationDefaults {
        GenerationRequest.checkSize(width, height);
        options = Map.copyOf(options);
        loras = List.copyOf(loras);
    }

    /** Defaults with these option values. */
    public static GenerationDefaults of(int width, int height, int steps, int maxSequenceLength, DType dtype, GuidanceDefaults guidance,
                                        GenerationOption... options) {
        Map<Class<? extends GenerationOption>, GenerationOption> m = new LinkedHashMap<>();
        for (GenerationOption o : options) m.put(o.getClass(), o);
        return new GenerationDefaults(width, height, steps, maxSequenceLength, dtype, m, guidance, List.of(), null);
    }

    /**
     * The LoRAs the model's recipe brings; when their files are not on this machine, an {@link InvalidRequestException}
     * that says where to put them (checked when the model loads, so other commands work without them).
     */
    public List<LoraSpec> requireLoras() {
        if (lorasUnavailable != null) throw new InvalidRequestException(lorasUnavailable);
        return loras;
    }

    public <T extends GenerationOption> T option(Class<T> type) {
        return type.cast(options.get(type));
    }

    /**
     * These defaults overlaid with a descriptor's: its {@code defaults} (the keys of the settings record: width, height,
     * steps, max_sequence_length, dtype, the options' keys, and {@code lora}), its {@code guidance} recommendation
     * ({@code w}, {@code layers}) and its {@code recommended_guidance} presets. {@code modelsRoot} resolves a recipe's
     * relative LoRA path (null: MMDIT_MODELS not set).
     */
    public GenerationDefaults withDescriptor(ModelDescriptor d, Path modelsRoot) {
        if (d == null) return this;
        JsonNode j = d.defaults();
        String where = d.file() + ": defaults";
        Integer w = SettingsJson.integer(j, "width", 16, GenerationRequest.MAX_SIZE, where);
        Integer h = SettingsJson.integer(j, "height", 16, GenerationRequest.MAX_SIZE, where);
        Integer s = SettingsJson.integer(j, "steps", 1, GenerationRequest.MAX_STEPS, where);
        Integer len = SettingsJson.integer(j, "max_sequence_length", 1, 4096, where);
        String dt = SettingsJson.text(j, "dtype", where);
        Map<Class<? extends GenerationOption>, GenerationOption> opts = new LinkedHashMap<>(options);
        for (GenerationOption o : GenerationOptions.read(j, where)) opts.put(o.getClass(), o);
        if (j.has("sigmas") && s == null) s = ((CustomSigmas) opts.get(CustomSigmas.class)).steps();
        GuidanceDefaults g = guidance;
        JsonNode rec = d.guidance();
        if (rec != null && rec.isObject()) {
            Double rw = SettingsJson.number(rec, "w", d.file() + ": guidance");
            String rl = SettingsJson.text(rec, "layers", d.file() + ": guidance");
            g = g.withRecommendation(rw != null ? rw : g.w(), rl != null ? LayerSchedule.parse(rl) : g.layers());
        }
        List<Preset> presets = new ArrayList<>();
        for (ModelDescriptor.RecommendedGuidance r : d.recommendedGuidance()) {
            presets.add(new Preset(r.direction(), r.pos(), r.neg(), r.w(), LayerSchedule.parse(r.layers())));
        }
        g = g.withPresets(presets);
        JsonNode l = j.path("lora");
        List<LoraSpec> recipe = loras;
        String unavailable = lorasUnavailable;
        if (l.isObject()) {
            Path file = Path.of(l.path("file").asText(""));
            String repo = l.path("hf_repo").asText(file.toString());
            unavailable = null;
            if (!file.isAbsolute() && modelsRoot == null) {
                unavailable = "this model needs the LoRA " + repo + ": download it and set MMDIT_MODELS to the folder holding '" + file
                        + "' (MMDIT_MODELS is not set), or give --lora FILE";
            } else {
                if (!file.isAbsolute()) file = modelsRoot.resolve(file);
                if (!Files.isRegularFile(file)) {
                    unavailable = "this model needs the LoRA " + repo + " at " + file + ": no such file (download it there, or give --lora FILE)";
                }
            }
            recipe = List.of(new LoraSpec(file, l.path("scale").asDouble(1.0)));
        }
        return new GenerationDefaults(w != null ? w : width, h != null ? h : height, s != null ? s : steps, len != null ? len : maxSequenceLength,
                dt != null ? DType.parse(dt) : dtype, opts, g, recipe, unavailable);
    }
}
