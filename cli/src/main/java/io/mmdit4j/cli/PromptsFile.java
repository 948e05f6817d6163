package io.mmdit4j.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.mmdit4j.pipeline.GenerationRequest;
import io.mmdit4j.pipeline.GenerationSettings;
import io.mmdit4j.pipeline.InvalidRequestException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.TreeSet;

/**
 * {@code --prompts-file}: plain text, one prompt a line (blank lines and lines starting with {@code #} skipped), all of them
 * one request; or JSON Lines ({@code .jsonl}, or a first entry starting with <code>{</code>), one object a line with a
 * {@code prompt} (or {@code prompts}) and any per-line settings in the keys of the settings record ({@code seed},
 * {@code width}, {@code steps}, {@code cfg_scale}, {@code negative_prompt}, {@code init_image}, {@code strength},
 * {@code modulation_guidance}, ...): each line is a request of its own, on top of the command line's options. The model,
 * dtype and LoRAs are the run's, not a line's.
 */
final class PromptsFile {
    private PromptsFile() {}

    private static final ObjectMapper JSON = new ObjectMapper().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    /** The settings-record keys a line may set (the record's request keys; the model, dtype and LoRAs belong to the run). */
    static final Set<String> KEYS = Set.of("prompt", "prompts", "negative_prompt", "seed", "seeds", "width", "height", "steps",
            "max_sequence_length", "images_per_prompt", "cfg_scale", "true_cfg_scale", "guidance_scale", "sigmas", "sigmas_shifted", "shift", "frames", "fps",
            "init_image", "init_image_sha256", "strength", "mask", "mask_sha256", "scales", "scales_noise", "modulation_guidance", "mg_norm",
            "sample_size");

    /** The entries of a file: non-blank lines that are not {@code #} comments, with their line numbers. */
    record Line(int number, String text) {}

    static List<Line> lines(Path file) throws IOException {
        List<Line> out = new ArrayList<>();
        List<String> all = Files.readAllLines(file);
        for (int i = 0; i < all.size(); i++) {
            String l = all.get(i);
            if (!l.isBlank() && !l.stripLeading().startsWith("#")) out.add(new Line(i + 1, l));
        }
        return out;
    }

    static boolean isJsonLines(Path file, List<Line> lines) {
        return file.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(".jsonl")
                || (!lines.isEmpty() && lines.get(0).text().stripLeading().startsWith("{"));
    }

    /**
     * The request of one JSON line: {@code base} (the command line's request) with the line's prompt and settings on top.
     * Every key is checked ({@link #KEYS}) and read with the settings record's strict rules.
     */
    static GenerationRequest request(GenerationRequest.Builder base, Path file, Line line) {
        String where = file + ":" + line.number();
        JsonNode j;
        try {
            j = JSON.readTree(line.text());
        } catch (JsonProcessingException e) {
            throw new InvalidRequestException(where + ": not a JSON object: " + e.getOriginalMessage());
        }
        if (j == null || !j.isObject()) throw new InvalidRequestException(where + ": expected a JSON object, got " + line.text());
        ObjectNode o = (ObjectNode) j.deepCopy();
        Set<String> unknown = new TreeSet<>();
        for (Iterator<String> it = o.fieldNames(); it.hasNext(); ) {
            String k = it.next();
            if (!KEYS.contains(k)) unknown.add(k);
        }
        if (!unknown.isEmpty()) {
            throw new InvalidRequestException(where + ": unknown key(s) " + unknown + "; a line takes " + new TreeSet<>(KEYS)
                    + " (the model, dtype and LoRAs are the run's)");
        }
        GenerationRequest run = base.build(); // a line's negative prompt alone takes the run's CFG (or FLUX true CFG) scale
        if (o.has("negative_prompt") && !o.has("cfg_scale") && !o.has("true_cfg_scale")) {
            if (run.option(io.mmdit4j.pipeline.ClassifierFreeGuidance.class) != null) {
                o.put("cfg_scale", run.option(io.mmdit4j.pipeline.ClassifierFreeGuidance.class).scale());
            } else if (run.option(io.mmdit4j.pipeline.TrueCfg.class) != null) {
                o.put("true_cfg_scale", run.option(io.mmdit4j.pipeline.TrueCfg.class).scale());
            }
        }
        if (o.has("prompt")) {
            if (o.has("prompts")) throw new InvalidRequestException(where + ": give 'prompt' or 'prompts', not both");
            o.set("prompts", o.remove("prompt"));
        }
        GenerationRequest line0 = GenerationSettings.read(o, where).request();
        GenerationRequest.Builder b = base.build().toBuilder().prompts(line0.prompts());
        if (o.has("images_per_prompt")) b.imagesPerPrompt(line0.imagesPerPrompt());
        if (line0.width() != null) b.width(line0.width());
        if (line0.height() != null) b.height(line0.height());
        if (line0.steps() != null) b.steps(line0.steps());
        if (line0.maxSequenceLength() != null) b.maxSequenceLength(line0.maxSequenceLength());
        if (o.has("seed") || o.has("seeds")) b.seeds(line0.seeds());
        if (o.has("modulation_guidance")) b.guidance(line0.guidance());
        if (o.has("mg_norm")) b.normControl(line0.normControl());
        line0.options().forEach(b::option);
        try {
            return b.build();
        } catch (InvalidRequestException e) {
            throw new InvalidRequestException(where + ": " + e.getMessage(), e);
        }
    }
}
