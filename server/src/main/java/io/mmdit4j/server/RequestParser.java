package io.mmdit4j.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.mmdit4j.guidance.CfgRows;
import io.mmdit4j.guidance.Direction;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.guidance.NormControl;
import io.mmdit4j.guidance.StepWindow;
import io.mmdit4j.pipeline.GenerationOptions;
import io.mmdit4j.pipeline.GenerationRequest;
import io.mmdit4j.pipeline.SettingsJson;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/**
 * Request bodies → {@link GenerationRequest}s, strictly: malformed JSON, a key this endpoint does not know, a value of the
 * wrong type or range, a size that is not two multiples of 16, too many images or a prompt over the limit is an
 * {@link ApiException} (400) naming the field. The native body takes every setting of the generation API, in the keys of
 * the settings record PNGs carry (so an image's record, {@code mmdit inspect}'s JSON, can be posted as it is).
 */
final class RequestParser {
    /** Duplicate keys and trailing tokens are errors, not silently resolved. */
    static final ObjectMapper JSON = new ObjectMapper()
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .enable(com.fasterxml.jackson.core.JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

    static final Set<String> OPENAI_KEYS = Set.of("prompt", "n", "size", "response_format", "seed", "max_sequence_length", "model", "user");
    static final Set<String> NATIVE_KEYS = Set.of("prompt", "prompts", "negative_prompt", "n", "images_per_prompt", "size", "width", "height",
            "steps", "seed", "seeds", "max_sequence_length", "guidance_scale", "cfg_scale", "true_cfg_scale", "sigmas", "sigmas_shifted", "shift", "frames",
            "fps", "mg_norm", "modulation_guidance", "model", "family", "dtype", "sampler", "loras", "lora_strict",
            "pooled_adapter"); // COSMOS records name their adapter: accepted when it is the one the server loaded
    static final Set<String> DIRECTION_KEYS = Set.of("label", "preset", "pos", "neg", "w", "layers", "steps", "rows", "row_weights");

    private final ServerLimits limits;
    private final String model;

    RequestParser(ServerLimits limits, String model) {
        this.limits = limits;
        this.model = model;
    }

    /** An OpenAI request: the generation, and whether images come back as {@code url}s (else {@code b64_json}). */
    record OpenAi(GenerationRequest request, boolean urls) {}

    static JsonNode parse(byte[] body) {
        if (body.length == 0) throw ApiException.invalid("the request body is empty: expected a JSON object");
        JsonNode j;
        try {
            j = JSON.readTree(body);
        } catch (JsonProcessingException e) {
            throw new ApiException(400, "malformed_json", "malformed JSON: " + e.getOriginalMessage()
                    + (e.getLocation() == null ? "" : " (line " + e.getLocation().getLineNr() + ", column " + e.getLocation().getColumnNr() + ")"));
        } catch (java.io.IOException e) {
            throw new ApiException(400, "malformed_json", "unreadable request body: " + e.getMessage());
        }
        if (j == null || !j.isObject()) throw new ApiException(400, "malformed_json", "the request body must be a JSON object");
        return j;
    }

    OpenAi openAi(byte[] body) {
        JsonNode j = parse(body);
        onlyKeys(j, OPENAI_KEYS, "");
        try {
            String prompt = SettingsJson.text(j, "prompt", "request");
            if (prompt == null) throw ApiException.invalid("'prompt' is required", "prompt");
            GenerationRequest.Builder b = GenerationRequest.builder().prompt(checkPrompt(prompt, "prompt"));
            Integer n = SettingsJson.integer(j, "n", 1, Integer.MAX_VALUE, "request");
            if (n != null) b.imagesPerPrompt(checkImages(n, "n"));
            size(j, b);
            Long seed = SettingsJson.seed(j, "seed", "request");
            if (seed != null) b.seed(seed);
            Integer len = SettingsJson.integer(j, "max_sequence_length", 1, 4096, "request"); // an extension, as seed
            if (len != null) b.maxSequenceLength(len);
            checkModel(SettingsJson.text(j, "model", "request"));
            SettingsJson.text(j, "user", "request"); // accepted and ignored (OpenAI's end-user id)
            String format = SettingsJson.text(j, "response_format", "request");
            if (format != null && !format.equals("b64_json") && !format.equals("url")) {
                throw ApiException.invalid("'response_format' must be \"b64_json\" or \"url\", got \"" + format + "\"", "response_format");
            }
            return new OpenAi(b.build(), "url".equals(format));
        } catch (IllegalArgumentException e) { // InvalidRequestException and the builders' own checks
            throw ApiException.invalid(e.getMessage());
        }
    }

    GenerationRequest nativeRequest(byte[] body) {
        JsonNode j = parse(body);
        onlyKeys(j, NATIVE_KEYS, "");
        String where = "request";
        try {
            GenerationRequest.Builder b = GenerationRequest.builder();
            if (j.has("prompt") && j.has("prompts")) throw ApiException.invalid("give 'prompt' or 'prompts', not both", "prompts");
            List<String> prompts = SettingsJson.texts(j, j.has("prompt") ? "prompt" : "prompts", where);
            if (prompts == null || prompts.isEmpty()) throw ApiException.invalid("'prompt' (or 'prompts') is required", "prompt");
            if (prompts.size() > limits.maxImages()) {
                throw ApiException.invalid(prompts.size() + " prompts: this server makes at most " + limits.maxImages() + " images per request", "prompts");
            }
            for (String p : prompts) checkPrompt(p, "prompt");
            b.prompts(prompts);
            if (j.has("n") && j.has("images_per_prompt")) throw ApiException.invalid("give 'n' or 'images_per_prompt', not both", "n");
            String nKey = j.has("n") ? "n" : "images_per_prompt";
            Integer n = SettingsJson.integer(j, nKey, 1, Integer.MAX_VALUE, where);
            if (n != null) b.imagesPerPrompt(n);
            checkImages(prompts.size() * (n == null ? 1 : n), nKey);
            size(j, b);
            Integer steps = SettingsJson.integer(j, "steps", 1, limits.maxSteps(), where);
            if (steps != null) b.steps(steps);
            Long seed = SettingsJson.seed(j, "seed", where);
            if (seed != null) b.seed(seed);
            JsonNode seeds = j.get("seeds");
            if (seeds != null && !seeds.isNull()) {
                if (seed != null) throw ApiException.invalid("give 'seed' or 'seeds', not both", "seeds");
                if (!seeds.isArray()) throw ApiException.invalid("'seeds' must be a list of seeds", "seeds");
                List<Long> list = new ArrayList<>();
                for (JsonNode s : seeds) {
                    if (!s.isIntegralNumber()) throw ApiException.invalid("'seeds' must hold whole numbers in 0..2^64-1, got " + s, "seeds");
                    list.add(SettingsJson.seed(JSON.createObjectNode().set("s", s), "s", where + ": 'seeds'"));
                }
                b.seeds(list.stream().mapToLong(Long::longValue).toArray());
            }
            Integer len = SettingsJson.integer(j, "max_sequence_length", 1, 4096, where);
            if (len != null) b.maxSequenceLength(len);
            String norm = SettingsJson.text(j, "mg_norm", where);
            if (norm != null) b.normControl(NormControl.parse(norm));
            for (String p : negativePrompts(j)) checkPrompt(p, "negative_prompt");
            GenerationOptions.read(j, where).forEach(b::option);
            JsonNode mg = j.get("modulation_guidance");
            if (mg != null && !mg.isNull()) {
                if (!mg.isArray()) throw ApiException.invalid("'modulation_guidance' must be a list of directions", "modulation_guidance");
                if (mg.size() > limits.maxDirections()) {
                    throw ApiException.invalid(mg.size() + " guidance directions: at most " + limits.maxDirections(), "modulation_guidance");
                }
                int k = 0;
                for (JsonNode d : mg) b.guide(direction(d, "modulation_guidance[" + k++ + "]"));
            }
            checkModel(SettingsJson.text(j, "model", where));
            JsonNode loras = j.get("loras");
            if (loras != null && !loras.isNull() && !(loras.isArray() && loras.isEmpty())) {
                throw ApiException.invalid("'loras': this server serves its model as loaded; LoRAs are chosen when it starts", "loras");
            }
            SettingsJson.bool(j, "lora_strict", where);
            // the settings record's "family", "dtype" and "sampler" are checked against the model after resolving
            SettingsJson.text(j, "family", where);
            SettingsJson.text(j, "dtype", where);
            SettingsJson.text(j, "sampler", where);
            return b.build();
        } catch (IllegalArgumentException e) { // InvalidRequestException and the builders' own checks
            throw ApiException.invalid(e.getMessage());
        }
    }

    private static List<String> negativePrompts(JsonNode j) {
        List<String> n = SettingsJson.texts(j, "negative_prompt", "request");
        return n == null ? List.of() : n;
    }

    private Direction direction(JsonNode d, String where) {
        if (!d.isObject()) throw ApiException.invalid(where + ": expected a direction object, got " + d, "modulation_guidance");
        onlyKeys(d, DIRECTION_KEYS, where + ".");
        String preset = SettingsJson.text(d, "preset", where), pos = SettingsJson.text(d, "pos", where), neg = SettingsJson.text(d, "neg", where);
        if ((pos == null) != (neg == null)) throw ApiException.invalid(where + ": give both 'pos' and 'neg' (or a 'preset')", "modulation_guidance");
        if (preset == null && pos == null) throw ApiException.invalid(where + ": a direction needs a 'preset' or 'pos' and 'neg'", "modulation_guidance");
        if (pos != null) {
            checkPrompt(pos, where + ".pos");
            checkPrompt(neg, where + ".neg");
        }
        Double w = SettingsJson.number(d, "w", where);
        String layers = SettingsJson.text(d, "layers", where), steps = SettingsJson.text(d, "steps", where), rows = SettingsJson.text(d, "rows", where);
        double[] rw = SettingsJson.numbers(d, "row_weights", where);
        try {
            return new Direction(SettingsJson.text(d, "label", where), preset == null ? null : io.mmdit4j.guidance.Presets.key(preset), pos, neg, w,
                    layers == null ? null : LayerSchedule.parse(layers), steps == null ? null : StepWindow.parse(steps),
                    rows == null ? null : CfgRows.parse(rows), rw);
        } catch (IllegalArgumentException e) {
            throw ApiException.invalid(where + ": " + e.getMessage(), "modulation_guidance");
        }
    }

    /** {@code size} "WxH" (OpenAI's form; "auto" is the model's default) or {@code width}/{@code height}. */
    private void size(JsonNode j, GenerationRequest.Builder b) {
        String size = SettingsJson.text(j, "size", "request");
        if (size != null && (j.has("width") || j.has("height"))) throw ApiException.invalid("give 'size' or 'width' and 'height', not both", "size");
        int w, h;
        if (size != null) {
            if (size.equals("auto")) return;
            String[] p = size.split("x", -1);
            try {
                if (p.length != 2) throw new NumberFormatException();
                w = Integer.parseInt(p[0]);
                h = Integer.parseInt(p[1]);
            } catch (NumberFormatException e) {
                throw ApiException.invalid("'size' must be WIDTHxHEIGHT (e.g. \"256x256\") or \"auto\", got \"" + size + "\"", "size");
            }
        } else {
            Integer iw = SettingsJson.integer(j, "width", 1, Integer.MAX_VALUE, "request"), ih = SettingsJson.integer(j, "height", 1, Integer.MAX_VALUE, "request");
            if (iw == null && ih == null) return;
            if (iw != null) checkSide(iw, "width");
            if (ih != null) checkSide(ih, "height");
            if (iw != null) b.width(iw);
            if (ih != null) b.height(ih);
            return;
        }
        checkSide(w, "size");
        checkSide(h, "size");
        b.size(w, h);
    }

    private void checkSide(int v, String param) {
        if (v < 16 || v % 16 != 0 || v > limits.maxSide()) {
            throw ApiException.invalid("width and height must be multiples of 16 in 16.." + limits.maxSide() + " on this server, got " + v, param);
        }
    }

    private int checkImages(int n, String param) {
        if (n < 1 || n > limits.maxImages()) {
            throw ApiException.invalid("'" + param + "' " + n + ": this server makes 1.." + limits.maxImages() + " images per request (--max-batch)", param);
        }
        return n;
    }

    private String checkPrompt(String p, String param) {
        if (p.length() > limits.maxPromptChars()) {
            throw ApiException.invalid(param + " has " + p.length() + " characters: at most " + limits.maxPromptChars() + " (--max-prompt-chars)", param);
        }
        return p;
    }

    private void checkModel(String m) {
        if (m != null && !m.equals(model)) throw new ApiException(404, "model_not_found", "this server serves '" + model + "', not '" + m + "'", "model");
    }

    private static void onlyKeys(JsonNode j, Set<String> allowed, String prefix) {
        for (Iterator<String> it = j.fieldNames(); it.hasNext(); ) {
            String k = it.next();
            if (!allowed.contains(k)) {
                throw ApiException.invalid("unknown field '" + prefix + k + "' (accepted: " + String.join(", ", new TreeSet<>(allowed)) + ")", prefix + k);
            }
        }
    }
}
