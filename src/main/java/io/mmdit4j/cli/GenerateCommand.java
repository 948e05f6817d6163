package io.mmdit4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.mmdit4j.flux.FluxPipeline;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.guidance.Presets;
import io.mmdit4j.guidance.StepWindow;
import io.mmdit4j.image.PngImages;
import io.mmdit4j.models.ModelDescriptor;
import io.mmdit4j.models.ModelRegistry;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Torch;
import io.mmdit4j.sampling.Progress;
import io.mmdit4j.sampling.Timings;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code mmdit generate}: FLUX text-to-image with modulation guidance, PNGs carrying their settings
 * ({@code ./mmdit inspect image.png} shows them, {@code generate --from image.png} repeats them).
 */
@Command(name = "generate", mixinStandardHelpOptions = true, description = "Generate images with a FLUX or SD3 / SD3.5 model (diffusers folder, or BFL files for FLUX), or videos with HunyuanVideo (diffusers folder; .mp4, .webm or .gif).")
final class GenerateCommand implements Callable<Integer> {
    static final String METADATA_KEY = "mmdit4j";

    @Option(names = "--model", description = "diffusers FLUX or SD3 folder (model_index.json), a BFL transformer file (with --vae and --text-encoders), or a model name (default: flux-tiny-demo)")
    String model;
    @Option(names = "--vae", description = "ae.safetensors for a BFL transformer file")
    Path vae;
    @Option(names = "--text-encoders", description = "folder with tokenizer/, text_encoder/, tokenizer_2/, text_encoder_2/ (BFL layout)")
    Path textEncoders;
    @Option(names = "--prompt", description = "a prompt (repeatable)")
    List<String> prompts = new ArrayList<>();
    @Option(names = "--prompts-file", description = "a file with one prompt per line")
    Path promptsFile;
    @Option(names = "--width", description = "width in pixels, multiple of 16 (default: the model's)")
    Integer width;
    @Option(names = "--height", description = "height in pixels, multiple of 16 (default: the model's)")
    Integer height;
    @Option(names = "--steps", description = "denoising steps (default: the model's)")
    Integer steps;
    @Option(names = "--guidance", description = "embedded guidance scale for dev models (default: the model's, 3.5)")
    Double guidanceScale;
    @Option(names = "--seed", description = "seed of the first image; image i uses seed+i (default: 0)")
    Long seed;
    @Option(names = "--batch", description = "images per prompt (default: 1)")
    Integer batch;
    @Option(names = "--max-sequence-length", description = "T5 tokens (default: the model's; 256 schnell, 512 dev)")
    Integer maxSequenceLength;
    @Option(names = "--dtype", description = "fp32 or bf16 (default: fp32)")
    String dtype;
    @Option(names = "--device", defaultValue = "cpu", description = "cpu or cuda[:N] (default: ${DEFAULT-VALUE})")
    String device;
    @Option(names = "--out", defaultValue = "outputs", description = "a .png file (one image), a .mp4/.webm/.gif file (one video) or a folder (default: ${DEFAULT-VALUE})")
    Path out;
    @Option(names = "--mg-preset", description = "guidance preset: complexity, aesthetics, hands, counting (repeatable)")
    List<String> presets = new ArrayList<>();
    @Option(names = "--mg-pos", description = "positive guidance prompt p+ (repeatable, paired with --mg-neg)")
    List<String> mgPos = new ArrayList<>();
    @Option(names = "--mg-neg", description = "negative guidance prompt p- (repeatable)")
    List<String> mgNeg = new ArrayList<>();
    @Option(names = "--mg-w", description = "guidance weight per direction (repeatable; default: the preset's or 3)")
    List<Double> mgW = new ArrayList<>();
    @Option(names = "--mg-layers", description = "layer schedule per direction, e.g. 5- or 13-30:3,31-45:1 (repeatable)")
    List<String> mgLayers = new ArrayList<>();
    @Option(names = "--mg-steps", description = "step window per direction, e.g. 0-2 (repeatable; default all)")
    List<String> mgSteps = new ArrayList<>();
    @Option(names = "--mg-norm", description = "norm control of guided vectors: none, keep-temb-norm (guided vector rescaled to ||temb||) or match-guided-norm (temb rescaled to ||temb_guided||) (default: none)")
    String mgNorm;
    @Option(names = "--from", description = "repeat the generation recorded in this PNG (other options override it)")
    Path from;
    @picocli.CommandLine.Mixin
    LoraOptions lora = new LoraOptions();

    @Option(names = "--threads", description = "CPU threads (default: all cores)")
    Integer threads;
    @Option(names = "--negative-prompt", description = "SD3: negative prompt for classifier-free guidance (one, or one per prompt; default \"\")")
    List<String> negativePrompts = new ArrayList<>();
    @Option(names = "--cfg", description = "SD3: classifier-free guidance scale, on when > 1 (default: the model's; 7.0 without a descriptor)")
    Double cfg;
    @Option(names = "--sigmas", description = "SD3: explicit sigmas used as given (no shift), e.g. 1.0,0.9454,0.8959,0.7904,0.7371,0.6022,0")
    String sigmas;
    @Option(names = "--shift", description = "SD3: static scheduler shift instead of the folder's scheduler config (3.0 for SD3.5)")
    Double shift;
    @Option(names = "--mg-rows", description = "SD3 with CFG: which halves each guidance direction steers: both (reference), cond, cond-neg (repeatable)")
    List<String> mgRows = new ArrayList<>();
    @Option(names = "--frames", description = "HunyuanVideo: frames, 4k+1 (default: the model's, 61)")
    Integer frames;
    @Option(names = "--fps", description = "HunyuanVideo: frames per second of the written video (default: the model's, 15)")
    Integer fps;
    @Option(names = "--png-frames", description = "HunyuanVideo: also write every frame as a PNG into this folder")
    Path pngFrames;

    @Override
    public Integer call() throws IOException {
        if (threads != null) Torch.setThreads(threads);
        JsonNode recorded = from == null ? null : readRecorded(from);
        String modelArg = model != null ? model : recorded != null ? recorded.path("model").asText(null) : null;
        if (modelArg == null) modelArg = "flux-tiny-demo";
        ModelRegistry registry = ModelRegistry.standard();
        ModelDescriptor d = registry.descriptor(modelArg);
        if (d != null && d.isGenerated()) {
            System.err.println(d.family().equals(HunyuanVideoGenerate.FAMILY)
                    ? "note: " + d.name() + " is a generated demo model (random weights): its videos look like noise. "
                    + "For real videos use --model with a HunyuanVideo diffusers folder, e.g. $MMDIT_MODELS/HunyuanVideo"
                    : "note: " + d.name() + " is the bundled demo model (random weights): its images look like noise. "
                    + "For real images use --model with a FLUX.1 folder, e.g. $MMDIT_MODELS/FLUX.1-schnell");
        }
        JsonNode defaults = d != null ? d.defaults() : new ObjectMapper().createObjectNode();
        Path path = registry.resolve(modelArg);
        String family = Sd3Generate.family(d, path);
        if (family.equals(HunyuanVideoGenerate.FAMILY)) return new HunyuanVideoGenerate(this).run(modelArg, path, defaults, recorded);
        HunyuanVideoGenerate.rejectVideoOptions(this, family);
        if (family.equals("sd3")) return new Sd3Generate(this).run(modelArg, path, defaults, recorded);
        Sd3Generate.rejectSd3Options(this);

        List<String> allPrompts = new ArrayList<>(prompts);
        if (promptsFile != null) Files.readAllLines(promptsFile).stream().filter(l -> !l.isBlank()).forEach(allPrompts::add);
        if (allPrompts.isEmpty() && recorded != null) recorded.path("prompts").forEach(p -> allPrompts.add(p.asText()));
        if (allPrompts.isEmpty()) throw new IllegalArgumentException("give at least one --prompt (or --prompts-file / --from)");

        int w = pick(width, recorded, "width", defaults.path("width").asInt(1024));
        int h = pick(height, recorded, "height", defaults.path("height").asInt(1024));
        int n = pick(steps, recorded, "steps", defaults.path("steps").asInt(28));
        int perPrompt = pick(batch, recorded, "images_per_prompt", 1);
        int maxSeq = pick(maxSequenceLength, recorded, "max_sequence_length", defaults.path("max_sequence_length").asInt(512));
        double g = guidanceScale != null ? guidanceScale : recorded != null ? recorded.path("guidance_scale").asDouble(3.5)
                : defaults.path("guidance_scale").isNumber() ? defaults.get("guidance_scale").asDouble() : 3.5;
        long s0 = seed != null ? seed : recorded != null ? recorded.path("seed").asLong(0) : 0;
        DType compute = DType.parse(dtype != null ? dtype : recorded != null ? recorded.path("dtype").asText("fp32") : defaults.path("dtype").asText("fp32"));
        List<FluxPipeline.Direction> directions = directions(recorded);
        io.mmdit4j.guidance.NormControl norm = io.mmdit4j.guidance.NormControl.parse(
                mgNorm != null ? mgNorm : recorded != null ? recorded.path("mg_norm").asText("none") : "none");
        loras = lora.resolve(recorded, defaults);
        loraStrict = lora.strict(recorded);

        if (out.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(".png") && allPrompts.size() * perPrompt > 1) {
            throw new IllegalArgumentException("--out " + out + " names one file but " + allPrompts.size() * perPrompt + " images will be made; give a folder");
        }
        checkWritable(out.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(".png") ? out.toAbsolutePath().getParent() : out);
        long t0 = System.nanoTime();
        try (FluxPipeline pipe = Files.isRegularFile(path.resolve("model_index.json")) ? FluxPipeline.load(path, compute, DeviceSpec.parse(device))
                : FluxPipeline.loadParts(path, require(vae, "--vae"), require(textEncoders, "--text-encoders"), compute, DeviceSpec.parse(device));
             LoraAdapters adapters = new LoraAdapters(LoraOptions.apply(loras, pipe.transformer(), loraStrict))) {
            System.err.printf(Locale.ROOT, "loaded %s in %.1f s%n", path, (System.nanoTime() - t0) / 1e9);
            FluxPipeline.Request r = new FluxPipeline.Request(allPrompts, perPrompt, w, h, n, g, new long[] {s0}, maxSeq, directions, null, norm);
            ProgressBar bar = new ProgressBar(System.console() != null);
            try (FluxPipeline.Result result = pipe.generate(r, bar)) {
                bar.done();
                List<Path> files = write(result, r, modelArg, compute);
                Timings t = result.timings();
                System.err.printf(Locale.ROOT, "timing: text encode %.2f s, denoise %.2f s (%.2f s/step), decode %.2f s%n",
                        t.textEncode() / 1e9, t.denoise() / 1e9, t.denoise() / 1e9 / n, t.decode() / 1e9);
                files.forEach(f -> System.out.println(f));
            }
        }
        return 0;
    }

    private List<Path> write(FluxPipeline.Result result, FluxPipeline.Request r, String modelArg, DType compute) throws IOException {
        boolean single = out.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(".png");
        if (single && r.batch() > 1) throw new IllegalArgumentException("--out " + out + " names one file but " + r.batch() + " images were made; give a folder");
        List<Path> files = new ArrayList<>();
        ObjectMapper json = new ObjectMapper();
        for (int i = 0; i < r.batch(); i++) {
            String prompt = r.prompts().get(i / r.imagesPerPrompt());
            long seed = r.seedsPerImage()[i];
            ObjectNode m = json.createObjectNode();
            m.put("model", modelArg).put("family", "flux");
            m.putArray("prompts").add(prompt);
            m.put("seed", seed).put("width", r.width()).put("height", r.height()).put("steps", r.steps())
                    .put("guidance_scale", r.guidanceScale()).put("max_sequence_length", r.maxSequenceLength())
                    .put("images_per_prompt", 1).put("dtype", compute.torchName()).put("sampler", "flow_match_euler");
            if (r.normControl() != io.mmdit4j.guidance.NormControl.NONE) m.put("mg_norm", r.normControl().text());
            LoraOptions.record(m, loras, loraStrict);
            ArrayNode mg = m.putArray("modulation_guidance");
            for (FluxPipeline.Direction d : r.guidance()) {
                mg.addObject().put("label", d.label()).put("pos", d.pos()).put("neg", d.neg()).put("w", d.w())
                        .put("layers", d.layers().toString()).put("steps", d.steps().toString());
            }
            Map<String, String> text = new LinkedHashMap<>();
            text.put("prompt", prompt);
            text.put("seed", Long.toString(seed));
            text.put(METADATA_KEY, json.writeValueAsString(m));
            Path f = single ? out : out.resolve(String.format(Locale.ROOT, "%03d-seed%d.png", i, seed));
            PngImages.write(f, PngImages.toRgb(result.images().select(0, i)), text);
            files.add(f);
        }
        return files;
    }

    private List<LoraOptions.Spec> loras = List.of();
    private boolean loraStrict;

    /** Closes the merged LoRAs (their merges stay until the pipeline closes right after). */
    record LoraAdapters(List<io.mmdit4j.lora.LoraAdapter> list) implements AutoCloseable {
        @Override
        public void close() {
            list.forEach(io.mmdit4j.lora.LoraAdapter::close);
        }
    }

    private List<FluxPipeline.Direction> directions(JsonNode recorded) {
        List<FluxPipeline.Direction> out = new ArrayList<>();
        if (presets.isEmpty() && mgPos.isEmpty() && recorded != null) {
            for (JsonNode d : recorded.path("modulation_guidance")) {
                out.add(new FluxPipeline.Direction(d.path("label").asText(), d.path("pos").asText(), d.path("neg").asText(), d.path("w").asDouble(),
                        LayerSchedule.parse(d.path("layers").asText("all")), StepWindow.parse(d.path("steps").asText("all")), null));
            }
            return out;
        }
        if (mgPos.size() != mgNeg.size()) throw new IllegalArgumentException("--mg-pos and --mg-neg must come in pairs (" + mgPos.size() + " vs " + mgNeg.size() + ")");
        int k = 0;
        for (String p : presets) {
            Presets preset = Presets.parse(p);
            out.add(direction(preset.name().toLowerCase(Locale.ROOT), preset.pos, preset.neg, preset.w, preset.layers, k++));
        }
        for (int i = 0; i < mgPos.size(); i++) out.add(direction("custom" + i, mgPos.get(i), mgNeg.get(i), 3.0, "5-", k++));
        return out;
    }

    private FluxPipeline.Direction direction(String label, String pos, String neg, double w, String layers, int k) {
        return new FluxPipeline.Direction(label, pos, neg, k < mgW.size() ? mgW.get(k) : w,
                LayerSchedule.parse(k < mgLayers.size() ? mgLayers.get(k) : layers),
                k < mgSteps.size() ? StepWindow.parse(mgSteps.get(k)) : StepWindow.all(), null);
    }

    static int pick(Integer given, JsonNode recorded, String key, int dflt) {
        if (given != null) return given;
        if (recorded != null && recorded.has(key)) return recorded.get(key).asInt();
        return dflt;
    }

    /** Fails before any work when the output folder cannot be created or written. */
    static void checkWritable(Path dir) throws IOException {
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new IllegalArgumentException("--out: cannot create " + dir + ": " + e.getMessage(), e);
        }
        if (!Files.isWritable(dir)) throw new IllegalArgumentException("--out: " + dir + " is not writable");
    }

    private static Path require(Path p, String option) {
        if (p == null) throw new IllegalArgumentException("a BFL transformer file needs " + option);
        return p;
    }

    static JsonNode readRecorded(Path png) throws IOException {
        if (io.mmdit4j.video.VideoFormat.forName(png) != null) return HunyuanVideoGenerate.readRecorded(png);
        String text = PngImages.readText(png).get(METADATA_KEY);
        if (text == null) throw new IllegalArgumentException(png + ": no mmdit4j generation settings in this PNG");
        return new ObjectMapper().readTree(text);
    }

    /** A progress bar on a terminal, a plain line per step otherwise. */
    static final class ProgressBar implements Progress {
        private final boolean terminal;
        private long total;

        ProgressBar(boolean terminal) {
            this.terminal = terminal;
        }

        @Override
        public boolean onStep(int step, int steps, float sigma, long elapsedNanos) {
            total += elapsedNanos;
            if (terminal) {
                int done = (step + 1) * 30 / steps;
                System.err.printf(Locale.ROOT, "\r[%s%s] step %d/%d sigma %.3f %.1f s", "#".repeat(done), " ".repeat(30 - done), step + 1, steps,
                        sigma, total / 1e9);
            } else {
                System.err.printf(Locale.ROOT, "step %d/%d sigma %.4f %.2f s%n", step + 1, steps, sigma, elapsedNanos / 1e9);
            }
            return true;
        }

        void done() {
            if (terminal) System.err.println();
        }
    }
}
