package io.mmdit4j.cli;

import io.mmdit4j.lora.LoraReport;
import io.mmdit4j.models.ModelDescriptor;
import io.mmdit4j.pipeline.ClassifierFreeGuidance;
import io.mmdit4j.pipeline.CustomSigmas;
import io.mmdit4j.pipeline.EmbeddedGuidance;
import io.mmdit4j.pipeline.GenerationRequest;
import io.mmdit4j.pipeline.GenerationResult;
import io.mmdit4j.pipeline.GenerationSettings;
import io.mmdit4j.pipeline.LoadOptions;
import io.mmdit4j.pipeline.Outputs;
import io.mmdit4j.pipeline.Pipeline;
import io.mmdit4j.pipeline.Pipelines;
import io.mmdit4j.pipeline.PreparedModel;
import io.mmdit4j.pipeline.Recordings;
import io.mmdit4j.pipeline.SchedulerShift;
import io.mmdit4j.pipeline.FrameRate;
import io.mmdit4j.pipeline.VideoFrames;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Torch;
import io.mmdit4j.sampling.Timings;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * {@code mmdit generate}: text-to-image or text-to-video with any model family, through the same API a Java program
 * uses ({@link Pipelines}, {@link GenerationRequest}); images and videos carry their settings ({@code inspect} shows
 * them, {@code --from} repeats them). Every setting is checked before the model loads.
 */
@Command(name = "generate", mixinStandardHelpOptions = true,
        description = "Generate images (FLUX, SD3 / SD3.5) or videos (HunyuanVideo) with modulation guidance; the family is detected from the model.")
final class GenerateCommand implements Callable<Integer> {
    @Option(names = "--model", description = "a model name (flux-tiny-demo, flux1-schnell, sd3.5-large, hunyuan-video, ...), a diffusers folder, or a single-file FLUX transformer (with --vae and --text-encoders) (default: flux-tiny-demo)")
    String model;
    @Option(names = "--vae", description = "ae.safetensors for a single-file FLUX transformer")
    Path vae;
    @Option(names = "--text-encoders", description = "folder with tokenizer/, text_encoder/, tokenizer_2/, text_encoder_2/ for a single-file FLUX transformer")
    Path textEncoders;
    @Option(names = "--prompt", description = "a prompt (repeatable)")
    List<String> prompts = new ArrayList<>();
    @Option(names = "--prompts-file", description = "a file with one prompt per line (blank lines and lines starting with # are skipped)")
    Path promptsFile;
    @Option(names = "--width", description = "width in pixels, multiple of 16 (default: the model's)")
    Integer width;
    @Option(names = "--height", description = "height in pixels, multiple of 16 (default: the model's)")
    Integer height;
    @Option(names = "--steps", description = "denoising steps (default: the model's)")
    Integer steps;
    @Option(names = "--seed", paramLabel = "SEED", description = "seed 0..2^64-1: once (image i gets seed+i) or once per image (default: 0)")
    List<String> seeds = new ArrayList<>();
    @Option(names = "--batch", description = "images per prompt (default: 1)")
    Integer batch;
    @Option(names = "--max-sequence-length", description = "text-encoder tokens (default: the model's; FLUX-schnell 256, dev 512)")
    Integer maxSequenceLength;
    @Option(names = "--dtype", description = "fp32 or bf16 (default: the model's)")
    String dtype;
    @Option(names = "--device", defaultValue = "cpu", description = "cpu or cuda[:N] (default: ${DEFAULT-VALUE})")
    String device;
    @Option(names = "--out", defaultValue = "outputs", description = "a .png file (one image), a .mp4/.webm/.gif file (one video) or a folder (default: ${DEFAULT-VALUE})")
    Path out;
    @Option(names = "--from", description = "repeat the generation recorded in this PNG or video (other options override it)")
    Path from;
    @Option(names = "--threads", description = "CPU threads (default: all cores)")
    Integer threads;

    @Option(names = "--guidance", description = "embedded guidance scale (FLUX.1-dev, HunyuanVideo; default: the model's)")
    Double guidanceScale;
    @Option(names = "--cfg", description = "classifier-free guidance scale, on when > 1 (SD3 / SD3.5; default: the model's)")
    Double cfg;
    @Option(names = "--negative-prompt", description = "negative prompt for classifier-free guidance: one, or one per prompt (default \"\")")
    List<String> negativePrompts = new ArrayList<>();
    @Option(names = "--sigmas", description = "explicit sigmas used as given (no shift), e.g. 1.0,0.9454,0.8959,0.7904,0.7371,0.6022,0 (SD3)")
    String sigmas;
    @Option(names = "--shift", description = "static scheduler shift instead of the model's scheduler config (SD3)")
    Double shift;
    @Option(names = "--frames", description = "video frames, 4k+1 (HunyuanVideo; default: the model's, 61)")
    Integer frames;
    @Option(names = "--fps", description = "frames per second of the written video (default: the model's, 15)")
    Integer fps;
    @Option(names = "--png-frames", description = "also write every video frame as a PNG into this folder")
    Path pngFrames;

    @Mixin
    GuidanceOptions guidance = new GuidanceOptions();
    @Mixin
    LoraOptions lora = new LoraOptions();

    @Override
    public Integer call() throws IOException {
        if (threads != null) Torch.setThreads(threads);
        GenerationSettings.Recorded recorded = from == null ? null : Recordings.read(from);
        String modelArg = model != null ? model : recorded != null && recorded.model() != null ? recorded.model() : "flux-tiny-demo";
        LoadOptions.Builder load = LoadOptions.builder().device(DeviceSpec.parse(device)).vae(vae).textEncoders(textEncoders)
                .loras(lora.resolve(recorded)).loraStrict(lora.strict(recorded));
        if (dtype != null) load.dtype(DType.parse(dtype));
        else if (recorded != null && recorded.dtype() != null) load.dtype(recorded.dtype());
        PreparedModel prepared = Pipelines.prepare(modelArg, load.build());
        ModelDescriptor d = prepared.descriptor();
        if (d != null && d.isGenerated()) {
            System.err.println("note: " + d.name() + " is a bundled demo model (random weights): its " + (prepared.family().video() ? "videos" : "images")
                    + " look like noise. For real ones use --model with " + (prepared.family().video()
                    ? "a HunyuanVideo diffusers folder, e.g. $MMDIT_MODELS/HunyuanVideo" : "a FLUX.1 folder, e.g. $MMDIT_MODELS/FLUX.1-schnell"));
        }
        GenerationSettings settings = prepared.resolve(request(recorded));
        prepared.warnings(settings).forEach(w -> System.err.println("mmdit: warning: " + w));
        boolean video = prepared.family().video();
        Outputs.check(out, settings.images(), video);
        if (pngFrames != null) {
            if (!video) throw new IllegalArgumentException("--png-frames: the model makes images, not videos");
            if (Files.exists(pngFrames) && !Files.isDirectory(pngFrames)) throw new IllegalArgumentException("--png-frames " + pngFrames + ": not a folder");
            Outputs.checkWritable(pngFrames);
        }

        long t0 = System.nanoTime();
        try (Pipeline pipe = prepared.load()) {
            System.err.printf(Locale.ROOT, "loaded %s in %.1f s%n", prepared.path(), (System.nanoTime() - t0) / 1e9);
            for (LoraReport r : pipe.loraReports()) System.err.println("lora: " + r.summary());
            ProgressBar bar = ProgressBar.stderr();
            try (GenerationResult result = pipe.generate(settings, bar, null)) {
                bar.done();
                List<Path> files = result.save(out); // video first, then the optional PNG frames
                if (pngFrames != null) Outputs.writeFramePngs(result, pngFrames);
                Timings t = result.timings();
                System.err.printf(Locale.ROOT, "timing: text encode %.2f s, denoise %.2f s (%.2f s/step), decode %.2f s%n",
                        t.textEncode() / 1e9, t.denoise() / 1e9, t.denoise() / 1e9 / settings.steps(), t.decode() / 1e9);
                files.forEach(System.out::println);
            }
        }
        return 0;
    }

    /** The request: the options given, else the recorded image's values, else (left open) the model's defaults. */
    private GenerationRequest request(GenerationSettings.Recorded recorded) throws IOException {
        GenerationRequest.Builder b = recorded != null ? recorded.request().toBuilder() : GenerationRequest.builder();
        List<String> all = new ArrayList<>(prompts);
        if (promptsFile != null) {
            for (String line : Files.readAllLines(promptsFile)) {
                if (!line.isBlank() && !line.stripLeading().startsWith("#")) all.add(line);
            }
        }
        if (!all.isEmpty()) b.prompts(all);
        else if (recorded == null) throw new IllegalArgumentException("give at least one --prompt (or --prompts-file / --from)");
        if (batch != null) b.imagesPerPrompt(batch);
        if (width != null) b.width(width);
        if (height != null) b.height(height);
        if (steps != null) b.steps(steps);
        if (!seeds.isEmpty()) b.seeds(parseSeeds(seeds));
        if (maxSequenceLength != null) b.maxSequenceLength(maxSequenceLength);
        if (guidanceScale != null) b.option(new EmbeddedGuidance(guidanceScale));
        if (cfg != null || !negativePrompts.isEmpty()) {
            ClassifierFreeGuidance old = recorded != null ? recorded.request().option(ClassifierFreeGuidance.class) : null;
            if (cfg == null && old == null) throw new IllegalArgumentException("--negative-prompt needs classifier-free guidance: give --cfg");
            b.option(new ClassifierFreeGuidance(cfg != null ? cfg : old.scale(), !negativePrompts.isEmpty() ? negativePrompts
                    : old != null ? old.negativePrompts() : List.of()));
        }
        if (sigmas != null) {
            CustomSigmas s = CustomSigmas.of(parseSigmas(sigmas));
            b.option(s);
            if (steps == null) b.steps(s.steps());
        }
        if (shift != null) b.option(new SchedulerShift(shift));
        if (frames != null) b.option(new VideoFrames(frames));
        if (fps != null) b.option(new FrameRate(fps));
        b.guidance(guidance.directions(recorded != null ? recorded.request().guidance() : List.of()));
        b.normControl(guidance.norm(recorded != null ? recorded.request().normControl() : null));
        return b.build();
    }

    /** Seeds 0..2^64-1 (PyTorch's range) as 64-bit patterns. */
    static long[] parseSeeds(List<String> texts) {
        long[] out = new long[texts.size()];
        for (int i = 0; i < out.length; i++) {
            String t = texts.get(i).trim();
            try {
                if (t.startsWith("-") || t.startsWith("+")) throw new NumberFormatException();
                out[i] = Long.parseUnsignedLong(t);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--seed " + t + ": expected a whole number in 0..18446744073709551615 (2^64-1)");
            }
        }
        return out;
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
}
