package io.mmdit4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.guidance.Presets;
import io.mmdit4j.guidance.StepWindow;
import io.mmdit4j.image.PngImages;
import io.mmdit4j.io.JsonConfigs;
import io.mmdit4j.models.ModelDescriptor;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.sampling.FlowMatchEulerScheduler;
import io.mmdit4j.sampling.Timings;
import io.mmdit4j.sd3.Sd3Pipeline;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * {@code mmdit generate} for SD3 / SD3.5 folders: the same options as FLUX plus {@code --negative-prompt}, {@code --cfg},
 * {@code --sigmas}, {@code --shift} and {@code --mg-rows}; PNGs carry the settings so {@code --from} repeats them.
 */
final class Sd3Generate {
    /** METHOD.md §4: SD3.5-Large's recommended modulation guidance (w 2 from block 2), the default for presets and custom directions. */
    static final double DEFAULT_W = 2.0;
    static final String DEFAULT_LAYERS = "2-";

    private final GenerateCommand c;

    Sd3Generate(GenerateCommand c) {
        this.c = c;
    }

    /**
     * The model family of a {@code --model}: the descriptor's, else the diffusers folder's {@code model_index.json}
     * {@code _class_name} ({@code StableDiffusion3Pipeline} → sd3, {@code FluxPipeline} → flux), else flux (BFL files).
     */
    static String family(ModelDescriptor d, Path path) {
        if (d != null) return d.family();
        Path index = path.resolve("model_index.json");
        if (!Files.isRegularFile(index)) return "flux";
        String cls = JsonConfigs.readObject(index).path("_class_name").asText("");
        if (cls.startsWith("StableDiffusion3")) return "sd3";
        if (cls.equals(io.mmdit4j.hunyuan.HunyuanVideoPipeline.CLASS_NAME)) return HunyuanVideoGenerate.FAMILY;
        if (cls.isEmpty() || cls.startsWith("Flux")) return "flux";
        throw new IllegalArgumentException(index + ": _class_name is '" + cls + "'; generate supports FluxPipeline, StableDiffusion3Pipeline and HunyuanVideoPipeline folders");
    }

    /** Rejects the SD3-only options for a FLUX model. */
    static void rejectSd3Options(GenerateCommand c) {
        List<String> given = new ArrayList<>();
        if (!c.negativePrompts.isEmpty()) given.add("--negative-prompt");
        if (c.cfg != null) given.add("--cfg");
        if (c.sigmas != null) given.add("--sigmas");
        if (c.shift != null) given.add("--shift");
        if (!c.mgRows.isEmpty()) given.add("--mg-rows");
        if (!given.isEmpty()) throw new IllegalArgumentException(String.join(", ", given) + ": SD3 options, but the model is a FLUX model");
    }

    int run(String modelArg, Path path, JsonNode defaults, JsonNode recorded) throws IOException {
        if (c.vae != null || c.textEncoders != null) {
            throw new IllegalArgumentException("--vae / --text-encoders are for FLUX BFL files; SD3 loads from a diffusers folder (model_index.json)");
        }
        if (!java.nio.file.Files.isDirectory(path)) {
            throw new IllegalArgumentException(path + ": SD3 generation needs a diffusers folder (model_index.json with the text encoders, "
                    + "tokenizers and VAE), not a single transformer file");
        }
        if (c.guidanceScale != null) throw new IllegalArgumentException("--guidance is FLUX's embedded guidance; SD3 uses classifier-free guidance: --cfg");

        List<String> allPrompts = new ArrayList<>(c.prompts);
        if (c.promptsFile != null) Files.readAllLines(c.promptsFile).stream().filter(l -> !l.isBlank()).forEach(allPrompts::add);
        if (allPrompts.isEmpty() && recorded != null) recorded.path("prompts").forEach(p -> allPrompts.add(p.asText()));
        if (allPrompts.isEmpty()) throw new IllegalArgumentException("give at least one --prompt (or --prompts-file / --from)");

        List<String> negatives = new ArrayList<>(c.negativePrompts);
        if (negatives.isEmpty() && recorded != null && recorded.path("negative_prompt").isTextual()) negatives.add(recorded.get("negative_prompt").asText());
        if (negatives.isEmpty() && defaults.path("negative_prompt").isTextual()) negatives.add(defaults.get("negative_prompt").asText());

        double[] sigmas = c.sigmas != null ? parseSigmas(c.sigmas) : numbers(recorded != null ? recorded.path("sigmas") : null);
        if (sigmas == null) sigmas = numbers(defaults.path("sigmas"));
        int sigmaSteps = sigmas == null ? -1 : sigmas[sigmas.length - 1] == 0.0 ? sigmas.length - 1 : sigmas.length;

        int w = GenerateCommand.pick(c.width, recorded, "width", defaults.path("width").asInt(1024));
        int h = GenerateCommand.pick(c.height, recorded, "height", defaults.path("height").asInt(1024));
        int n = GenerateCommand.pick(c.steps, recorded, "steps", sigmaSteps > 0 ? sigmaSteps : defaults.path("steps").asInt(28));
        int perPrompt = GenerateCommand.pick(c.batch, recorded, "images_per_prompt", 1);
        int maxSeq = GenerateCommand.pick(c.maxSequenceLength, recorded, "max_sequence_length", defaults.path("max_sequence_length").asInt(256));
        double cfg = c.cfg != null ? c.cfg : recorded != null && recorded.has("guidance_scale") ? recorded.get("guidance_scale").asDouble()
                : defaults.path("guidance_scale").asDouble(7.0);
        Double shift = c.shift != null ? c.shift : recorded != null && recorded.path("shift").isNumber() ? recorded.get("shift").asDouble() : null;
        long s0 = c.seed != null ? c.seed : recorded != null ? recorded.path("seed").asLong(0) : 0;
        DType compute = DType.parse(c.dtype != null ? c.dtype : recorded != null ? recorded.path("dtype").asText("fp32") : defaults.path("dtype").asText("fp32"));
        List<Sd3Pipeline.Direction> directions = directions(recorded);
        List<LoraOptions.Spec> loras = c.lora.resolve(recorded, defaults);
        boolean loraStrict = c.lora.strict(recorded);

        if (sigmas != null) FlowMatchEulerScheduler.fromSigmas(sigmas, 1000); // a bad list fails before anything loads
        Sd3Pipeline.Request r = new Sd3Pipeline.Request(allPrompts, negatives.isEmpty() ? null : negatives, perPrompt, w, h, n, cfg,
                new long[] {s0}, maxSeq, sigmas, false, shift, directions, null);
        boolean single = c.out.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(".png");
        if (single && r.batch() > 1) {
            throw new IllegalArgumentException("--out " + c.out + " names one file but " + r.batch() + " images will be made; give a folder");
        }
        GenerateCommand.checkWritable(single ? c.out.toAbsolutePath().getParent() : c.out);
        long t0 = System.nanoTime();
        try (Sd3Pipeline pipe = Sd3Pipeline.load(path, compute, DeviceSpec.parse(c.device));
             GenerateCommand.LoraAdapters adapters = new GenerateCommand.LoraAdapters(LoraOptions.apply(loras, pipe.transformer(), loraStrict))) {
            System.err.printf(Locale.ROOT, "loaded %s in %.1f s%n", path, (System.nanoTime() - t0) / 1e9);
            GenerateCommand.ProgressBar bar = new GenerateCommand.ProgressBar(System.console() != null);
            try (Sd3Pipeline.Result result = pipe.generate(r, bar::onStep)) {
                bar.done();
                List<Path> files = write(result, r, modelArg, compute, single, loras, loraStrict);
                Timings t = result.timings();
                System.err.printf(Locale.ROOT, "timing: text encode %.2f s, denoise %.2f s (%.2f s/step), decode %.2f s%n",
                        t.textEncode() / 1e9, t.denoise() / 1e9, t.denoise() / 1e9 / n, t.decode() / 1e9);
                files.forEach(f -> System.out.println(f));
            }
        }
        return 0;
    }

    private List<Path> write(Sd3Pipeline.Result result, Sd3Pipeline.Request r, String modelArg, DType compute, boolean single,
                             List<LoraOptions.Spec> loras, boolean loraStrict) throws IOException {
        List<Path> files = new ArrayList<>();
        ObjectMapper json = new ObjectMapper();
        for (int i = 0; i < r.batch(); i++) {
            int p = i / r.imagesPerPrompt();
            String prompt = r.prompts().get(p);
            String negative = r.negatives().get(p);
            long seed = r.seedsPerImage()[i];
            ObjectNode m = json.createObjectNode();
            m.put("model", modelArg).put("family", "sd3");
            LoraOptions.record(m, loras, loraStrict);
            m.putArray("prompts").add(prompt);
            m.put("negative_prompt", negative);
            m.put("seed", seed).put("width", r.width()).put("height", r.height()).put("steps", r.steps())
                    .put("guidance_scale", r.guidanceScale()).put("cfg", r.cfg()).put("max_sequence_length", r.maxSequenceLength())
                    .put("images_per_prompt", 1).put("dtype", compute.torchName()).put("sampler", "flow_match_euler");
            if (r.sigmas() != null) {
                ArrayNode s = m.putArray("sigmas");
                for (double v : r.sigmas()) s.add(v);
            }
            if (r.shift() != null) m.put("shift", r.shift());
            ArrayNode mg = m.putArray("modulation_guidance");
            for (Sd3Pipeline.Direction d : r.guidance()) {
                mg.addObject().put("label", d.label()).put("pos", d.pos()).put("neg", d.neg()).put("w", d.w())
                        .put("layers", d.layers().toString()).put("steps", d.steps().toString()).put("rows", d.rows().toString());
            }
            Map<String, String> text = new LinkedHashMap<>();
            text.put("prompt", prompt);
            text.put("negative_prompt", negative);
            text.put("seed", Long.toString(seed));
            text.put(GenerateCommand.METADATA_KEY, json.writeValueAsString(m));
            Path f = single ? c.out : c.out.resolve(String.format(Locale.ROOT, "%03d-seed%d.png", i, seed));
            PngImages.write(f, PngImages.toRgb(result.images().select(0, i)), text);
            files.add(f);
        }
        return files;
    }

    private List<Sd3Pipeline.Direction> directions(JsonNode recorded) {
        List<Sd3Pipeline.Direction> out = new ArrayList<>();
        if (c.presets.isEmpty() && c.mgPos.isEmpty() && recorded != null) {
            for (JsonNode d : recorded.path("modulation_guidance")) {
                out.add(new Sd3Pipeline.Direction(d.path("label").asText(), d.path("pos").asText(), d.path("neg").asText(), d.path("w").asDouble(),
                        LayerSchedule.parse(d.path("layers").asText("all")), StepWindow.parse(d.path("steps").asText("all")), null,
                        Sd3Pipeline.CfgRows.parse(d.path("rows").asText("both"))));
            }
            return out;
        }
        if (c.mgPos.size() != c.mgNeg.size()) {
            throw new IllegalArgumentException("--mg-pos and --mg-neg must come in pairs (" + c.mgPos.size() + " vs " + c.mgNeg.size() + ")");
        }
        int k = 0;
        for (String p : c.presets) {
            Presets preset = Presets.parse(p);
            out.add(direction(preset.name().toLowerCase(Locale.ROOT), preset.pos, preset.neg, k++));
        }
        for (int i = 0; i < c.mgPos.size(); i++) out.add(direction("custom" + i, c.mgPos.get(i), c.mgNeg.get(i), k++));
        if (c.mgRows.size() > Math.max(1, out.size())) {
            throw new IllegalArgumentException(c.mgRows.size() + " --mg-rows for " + out.size() + " guidance directions");
        }
        return out;
    }

    /** A direction with the SD3 defaults (w 2, layers 2-) unless --mg-w / --mg-layers / --mg-steps / --mg-rows say otherwise. */
    private Sd3Pipeline.Direction direction(String label, String pos, String neg, int k) {
        String rows = k < c.mgRows.size() ? c.mgRows.get(k) : c.mgRows.size() == 1 ? c.mgRows.get(0) : "both";
        return new Sd3Pipeline.Direction(label, pos, neg, k < c.mgW.size() ? c.mgW.get(k) : DEFAULT_W,
                LayerSchedule.parse(k < c.mgLayers.size() ? c.mgLayers.get(k) : DEFAULT_LAYERS),
                k < c.mgSteps.size() ? StepWindow.parse(c.mgSteps.get(k)) : StepWindow.all(), null, Sd3Pipeline.CfgRows.parse(rows));
    }

    /** {@code 1.0,0.9454,...,0} → doubles (the terminal 0 is optional). */
    static double[] parseSigmas(String text) {
        String[] parts = text.split(",");
        double[] s = new double[parts.length];
        for (int i = 0; i < parts.length; i++) {
            try {
                s[i] = Double.parseDouble(parts[i].trim());
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--sigmas: '" + parts[i].trim() + "' is not a number (expected e.g. 1.0,0.9454,0.8959,0)");
            }
        }
        return s;
    }

    private static double[] numbers(JsonNode array) {
        if (array == null || !array.isArray() || array.size() == 0) return null;
        double[] s = new double[array.size()];
        for (int i = 0; i < s.length; i++) s[i] = array.get(i).asDouble();
        return s;
    }
}
