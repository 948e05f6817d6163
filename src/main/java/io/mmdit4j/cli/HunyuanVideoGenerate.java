package io.mmdit4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.guidance.Presets;
import io.mmdit4j.guidance.StepWindow;
import io.mmdit4j.hunyuan.HunyuanVideoPipeline;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.sampling.Timings;
import io.mmdit4j.video.RgbFrames;
import io.mmdit4j.video.VideoFormat;
import io.mmdit4j.video.VideoFrames;
import io.mmdit4j.video.VideoOptions;
import io.mmdit4j.video.VideoReader;
import io.mmdit4j.video.VideoWriter;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * {@code mmdit generate} for HunyuanVideo folders: text-to-video with embedded guidance ({@code --guidance}) and modulation
 * guidance, written as MP4 / WebM / GIF (by the {@code --out} extension, or {@code NNN-seedS.mp4} files in an
 * {@code --out} folder) with the settings in the container metadata (the same keys as the PNGs), so
 * {@code inspect video.mp4} shows them and {@code --from video.mp4} repeats them. Every setting is checked before a
 * model loads.
 */
final class HunyuanVideoGenerate {
    static final String FAMILY = "hunyuan-video";
    /** METHOD.md §4: HunyuanVideo's recommended modulation guidance, w 3.5 from layer 5. */
    static final double DEFAULT_W = 3.5;
    static final String DEFAULT_LAYERS = "5-";
    /** METHOD.md §4's video aesthetics direction. */
    static final String VIDEO_AESTHETICS_POS = "Ultra-detailed, photorealistic, cinematic";
    static final String VIDEO_AESTHETICS_NEG = "Low-res, bad quality, blurred";

    private final GenerateCommand c;
    /** The model descriptor's recommended video-aesthetics weight and layers (METHOD.md's otherwise). */
    private double recommendedW = DEFAULT_W;
    private String recommendedLayers = DEFAULT_LAYERS;

    HunyuanVideoGenerate(GenerateCommand c) {
        this.c = c;
    }

    /** Rejects the video options for an image model. */
    static void rejectVideoOptions(GenerateCommand c, String family) {
        List<String> given = new ArrayList<>();
        if (c.frames != null) given.add("--frames");
        if (c.fps != null) given.add("--fps");
        if (c.pngFrames != null) given.add("--png-frames");
        if (!given.isEmpty()) throw new IllegalArgumentException(String.join(", ", given) + ": video options, but the model is a " + family + " image model");
        if (VideoFormat.forName(c.out) != null) {
            throw new IllegalArgumentException("--out " + c.out + ": a video file, but the model is a " + family + " image model (give a .png or a folder)");
        }
    }

    /** The generation settings recorded in a video's container metadata. */
    static JsonNode readRecorded(Path video) throws IOException {
        String text = VideoReader.probe(video).metadata().get(GenerateCommand.METADATA_KEY);
        if (text == null) throw new IllegalArgumentException(video + ": no mmdit4j generation settings in this video's metadata");
        return new ObjectMapper().readTree(text);
    }

    int run(String modelArg, Path path, JsonNode defaults, JsonNode recorded) throws IOException {
        rejectOthers();
        if (!Files.isDirectory(path)) {
            throw new IllegalArgumentException(path + ": HunyuanVideo generation needs a diffusers folder (model_index.json with transformer/, vae/, "
                    + "text encoders and tokenizers), not a single file");
        }
        List<String> allPrompts = new ArrayList<>(c.prompts);
        if (c.promptsFile != null) Files.readAllLines(c.promptsFile).stream().filter(l -> !l.isBlank()).forEach(allPrompts::add);
        if (allPrompts.isEmpty() && recorded != null) recorded.path("prompts").forEach(p -> allPrompts.add(p.asText()));
        if (allPrompts.isEmpty()) throw new IllegalArgumentException("give at least one --prompt (or --prompts-file / --from)");

        int w = GenerateCommand.pick(c.width, recorded, "width", defaults.path("width").asInt(512));
        int h = GenerateCommand.pick(c.height, recorded, "height", defaults.path("height").asInt(320));
        int f = GenerateCommand.pick(c.frames, recorded, "frames", defaults.path("frames").asInt(61));
        int n = GenerateCommand.pick(c.steps, recorded, "steps", defaults.path("steps").asInt(30));
        int fps = GenerateCommand.pick(c.fps, recorded, "fps", defaults.path("fps").asInt(15));
        int perPrompt = GenerateCommand.pick(c.batch, recorded, "videos_per_prompt", 1);
        int maxSeq = GenerateCommand.pick(c.maxSequenceLength, recorded, "max_sequence_length", defaults.path("max_sequence_length").asInt(256));
        double g = c.guidanceScale != null ? c.guidanceScale : recorded != null && recorded.has("guidance_scale") ? recorded.get("guidance_scale").asDouble()
                : defaults.path("guidance_scale").asDouble(6.0);
        long s0 = c.seed != null ? c.seed : recorded != null ? recorded.path("seed").asLong(0) : 0;
        DType compute = DType.parse(c.dtype != null ? c.dtype : recorded != null ? recorded.path("dtype").asText("fp32") : defaults.path("dtype").asText("fp32"));
        DeviceSpec device = DeviceSpec.parse(c.device);
        VideoOptions options = VideoOptions.fps(fps);

        io.mmdit4j.models.ModelDescriptor descriptor = io.mmdit4j.models.ModelRegistry.standard().descriptor(modelArg);
        if (descriptor != null) {
            for (io.mmdit4j.models.ModelDescriptor.RecommendedGuidance rg : descriptor.recommendedGuidance()) {
                if (rg.direction().equals("video-aesthetics")) {
                    recommendedW = rg.w();
                    recommendedLayers = rg.layers();
                }
            }
        }
        HunyuanVideoPipeline.Request r = new HunyuanVideoPipeline.Request(allPrompts, perPrompt, w, h, f, n, g, new long[] {s0}, maxSeq,
                directions(recorded), null);
        int blocks = io.mmdit4j.hunyuan.HunyuanVideoTransformer.inspect(path.resolve("transformer")).totalBlocks(); // headers only
        for (HunyuanVideoPipeline.Direction d : r.guidance()) d.layers().factors(blocks);                            // layers in range
        VideoFormat single = VideoFormat.forName(c.out);
        String name = c.out.getFileName() == null ? "" : c.out.getFileName().toString();
        if (single == null && name.contains(".") && !Files.isDirectory(c.out)) {
            throw new IllegalArgumentException("--out " + c.out + ": unknown video extension, expected .mp4 (H.264), .webm (VP9) or .gif, or a folder");
        }
        if (single != null && r.batch() > 1) {
            throw new IllegalArgumentException("--out " + c.out + " names one file but " + r.batch() + " videos will be made; give a folder");
        }
        GenerateCommand.checkWritable(single != null ? c.out.toAbsolutePath().getParent() : c.out);
        if (c.pngFrames != null) {
            if (Files.exists(c.pngFrames) && !Files.isDirectory(c.pngFrames)) throw new IllegalArgumentException("--png-frames " + c.pngFrames + ": not a folder");
            GenerateCommand.checkWritable(c.pngFrames);
        }

        long t0 = System.nanoTime();
        try (HunyuanVideoPipeline pipe = HunyuanVideoPipeline.load(path, compute, device)) {
            System.err.printf(Locale.ROOT, "loaded %s in %.1f s%n", path, (System.nanoTime() - t0) / 1e9);
            GenerateCommand.ProgressBar bar = new GenerateCommand.ProgressBar(System.console() != null);
            try (HunyuanVideoPipeline.Result result = pipe.generate(r, bar::onStep)) {
                bar.done();
                List<Path> files = write(result, r, modelArg, compute, fps, single != null, options);
                Timings t = result.timings();
                System.err.printf(Locale.ROOT, "timing: text encode %.2f s, denoise %.2f s (%.2f s/step), decode %.2f s%n",
                        t.textEncode() / 1e9, t.denoise() / 1e9, t.denoise() / 1e9 / n, t.decode() / 1e9);
                files.forEach(file -> System.out.println(file));
            }
        }
        return 0;
    }

    /** Options of the other families, refused rather than silently ignored. */
    private void rejectOthers() {
        List<String> given = new ArrayList<>();
        if (c.vae != null) given.add("--vae");
        if (c.textEncoders != null) given.add("--text-encoders");
        if (!c.negativePrompts.isEmpty()) given.add("--negative-prompt");
        if (c.cfg != null) given.add("--cfg");
        if (c.sigmas != null) given.add("--sigmas");
        if (c.shift != null) given.add("--shift");
        if (!c.mgRows.isEmpty()) given.add("--mg-rows");
        if (c.mgNorm != null && !c.mgNorm.equals("none")) given.add("--mg-norm");
        if (!c.lora.specs.isEmpty()) given.add("--lora");
        if (!given.isEmpty()) throw new IllegalArgumentException(String.join(", ", given) + ": not supported for HunyuanVideo models");
    }

    private List<Path> write(HunyuanVideoPipeline.Result result, HunyuanVideoPipeline.Request r, String modelArg, DType compute, int fps,
                             boolean single, VideoOptions options) throws IOException {
        List<Path> files = new ArrayList<>();
        ObjectMapper json = new ObjectMapper();
        String ext = single ? null : ".mp4";
        for (int i = 0; i < r.batch(); i++) {
            String prompt = r.prompts().get(i / r.videosPerPrompt());
            long seed = r.seedsPerVideo()[i];
            ObjectNode m = json.createObjectNode();
            m.put("model", modelArg).put("family", FAMILY);
            m.putArray("prompts").add(prompt);
            m.put("seed", seed).put("width", r.width()).put("height", r.height()).put("frames", r.frames()).put("fps", fps)
                    .put("steps", r.steps()).put("guidance_scale", r.guidanceScale()).put("max_sequence_length", r.maxSequenceLength())
                    .put("videos_per_prompt", 1).put("dtype", compute.torchName()).put("sampler", "flow_match_euler");
            ArrayNode mg = m.putArray("modulation_guidance");
            for (HunyuanVideoPipeline.Direction d : r.guidance()) {
                mg.addObject().put("label", d.label()).put("pos", d.pos()).put("neg", d.neg()).put("w", d.w())
                        .put("layers", d.layers().toString()).put("steps", d.steps().toString());
            }
            Map<String, String> text = new LinkedHashMap<>();
            text.put("prompt", prompt);
            text.put("seed", Long.toString(seed));
            text.put(GenerateCommand.METADATA_KEY, json.writeValueAsString(m));
            RgbFrames frames;
            try (PointerScope scope = new PointerScope()) {
                Tensor video = result.frames().select(0, i);                       // [F, 3, H, W] in [0, 1]
                frames = RgbFrames.fromTensor(video.mul(new Scalar(2.0)).sub(new Scalar(1.0))); // RgbFrames maps [-1, 1]
            }
            Path file = single ? c.out : c.out.resolve(String.format(Locale.ROOT, "%03d-seed%d%s", i, seed, ext));
            VideoWriter.write(file, frames, text, options); // atomic: a failed encode leaves nothing behind
            files.add(file);
            if (c.pngFrames != null) {
                Path dir = r.batch() == 1 ? c.pngFrames : c.pngFrames.resolve(String.format(Locale.ROOT, "%03d-seed%d", i, seed));
                VideoFrames.writePngs(dir, frames, text);
            }
        }
        return files;
    }

    private List<HunyuanVideoPipeline.Direction> directions(JsonNode recorded) {
        List<HunyuanVideoPipeline.Direction> out = new ArrayList<>();
        if (c.presets.isEmpty() && c.mgPos.isEmpty() && recorded != null) {
            for (JsonNode d : recorded.path("modulation_guidance")) {
                out.add(new HunyuanVideoPipeline.Direction(d.path("label").asText(), d.path("pos").asText(), d.path("neg").asText(), d.path("w").asDouble(),
                        LayerSchedule.parse(d.path("layers").asText("all")), StepWindow.parse(d.path("steps").asText("all")), null));
            }
            return out;
        }
        if (c.mgPos.size() != c.mgNeg.size()) {
            throw new IllegalArgumentException("--mg-pos and --mg-neg must come in pairs (" + c.mgPos.size() + " vs " + c.mgNeg.size() + ")");
        }
        int k = 0;
        for (String p : c.presets) {
            String key = p.trim().toLowerCase(Locale.ROOT);
            if (key.equals("video-aesthetics") || key.equals("video_aesthetics")) {
                out.add(direction("video-aesthetics", VIDEO_AESTHETICS_POS, VIDEO_AESTHETICS_NEG, k++));
            } else {
                Presets preset = Presets.parse(p);
                out.add(direction(preset.name().toLowerCase(Locale.ROOT), preset.pos, preset.neg, k++));
            }
        }
        for (int i = 0; i < c.mgPos.size(); i++) out.add(direction("custom" + i, c.mgPos.get(i), c.mgNeg.get(i), k++));
        return out;
    }

    /**
     * A direction with HunyuanVideo's defaults (w 3.5 from layer 5, or the descriptor's recommendation) unless
     * --mg-w / --mg-layers / --mg-steps say otherwise.
     */
    private HunyuanVideoPipeline.Direction direction(String label, String pos, String neg, int k) {
        return new HunyuanVideoPipeline.Direction(label, pos, neg, k < c.mgW.size() ? c.mgW.get(k) : recommendedW,
                LayerSchedule.parse(k < c.mgLayers.size() ? c.mgLayers.get(k) : recommendedLayers),
                k < c.mgSteps.size() ? StepWindow.parse(c.mgSteps.get(k)) : StepWindow.all(), null);
    }
}
