package io.mmdit4j.cli;

import io.mmdit4j.lora.LoraReport;
import io.mmdit4j.models.ModelDescriptor;
import io.mmdit4j.pipeline.GenerationRequest;
import io.mmdit4j.pipeline.GenerationResult;
import io.mmdit4j.pipeline.GenerationSettings;
import io.mmdit4j.pipeline.LoadOptions;
import io.mmdit4j.pipeline.Outputs;
import io.mmdit4j.pipeline.Pipeline;
import io.mmdit4j.pipeline.Pipelines;
import io.mmdit4j.pipeline.PooledAdapterFile;
import io.mmdit4j.pipeline.PreparedModel;
import io.mmdit4j.pipeline.Recordings;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.sampling.Timings;
import org.bytedeco.pytorch.Tensor;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * {@code mmdit generate}: text-to-image or text-to-video with any model family, through the same API a Java program
 * uses ({@link Pipelines}, {@link GenerationRequest}); images and videos carry their settings ({@code inspect} shows
 * them, {@code --from} repeats them). Every setting is checked before the model loads.
 */
@Command(name = "generate", mixinStandardHelpOptions = true,
        description = "Generate images (FLUX, SD3 / SD3.5, HiDream-I1) or videos (HunyuanVideo) with modulation guidance; the family is detected from the model.")
final class GenerateCommand implements Callable<Integer> {
    @Option(names = "--model", description = "a model name (flux-tiny-demo, flux1-schnell, sd3.5-large, hunyuan-video, ...), a diffusers folder, or a single-file FLUX transformer (with --vae and --text-encoders) (default: flux-tiny-demo)")
    String model;
    @Option(names = "--vae", description = "ae.safetensors for a single-file FLUX transformer")
    Path vae;
    @Option(names = "--text-encoders", description = "folder with tokenizer/, text_encoder/, tokenizer_2/, text_encoder_2/ for a single-file FLUX "
            + "transformer; COSMOS: the folder of its CLIP-L (e.g. FLUX.1-schnell)")
    Path textEncoders;
    @Option(names = "--llama", description = "the Llama-3.1-8B-Instruct transformers folder (weights + tokenizer.json) HiDream uses as text_encoder_4 "
            + "(default: the model folder's text_encoder_4/, else Meta-Llama-3.1-8B-Instruct/ beside it or under $MMDIT_MODELS)")
    Path llama;
    @Option(names = "--offload", description = "text: release the text encoders once a request's prompts are encoded, loading them again for "
            + "the next (FLUX, SD3 / SD3.5, HunyuanVideo, COSMOS; HiDream: one at a time, released before the transformer loads); "
            + "blocks: keep the transformer blocks on the host and move each to the device just before it runs, prefetching the next "
            + "(for devices smaller than the model; FLUX, SD3 / SD3.5, HunyuanVideo; a no-op on the CPU); text,blocks: both; "
            + "none: keep everything loaded (default: text when the weights exceed 3/4 of the machine's memory)")
    String offload;
    @Option(names = "--adapter", description = "COSMOS: the pooled-CLIP adapter (pooled_adapter.safetensors, the reference's checkpoint_<step>.pt, "
            + "a wrapper state dict, or an adapter trained with `mmdit train`); default: the model folder's, else $MMDIT_MODELS/cosmos-pooled")
    Path adapter;
    @Option(names = "--dtype", description = "fp32 or bf16 (default: the model's)")
    String dtype;
    @Option(names = "--device", defaultValue = "cpu", description = "cpu, cuda[:N], or meta (shapes only: every step and the decode run "
            + "without values and nothing is written; what a GPU run would ask for) (default: ${DEFAULT-VALUE})")
    String device;
    @Option(names = "--check-placement", description = "assert that every tensor the engine's ops receive is on --device (a misplaced "
            + "tensor fails naming the op)")
    boolean checkPlacement;
    @Option(names = "--strict-sync", description = "fail when a denoising step asks for a host<->device copy or a host read (runtime.Transfers); "
            + "on CUDA the steps also run with libtorch's sync-debug mode set to error")
    boolean strictSync;
    @Option(names = "--tf32", description = "CUDA: allow TF32 for fp32 matmuls and convolutions (cuBLAS, cuDNN)")
    boolean tf32;
    @Option(names = "--cuda-graphs", description = "CUDA: record each denoising step as a CUDA graph and replay it (FLUX; needs the "
            + "GPU build, mvn -Pcuda; refused on cpu and meta; never run on a GPU here)")
    boolean cudaGraphs;
    @Option(names = "--out", defaultValue = "outputs", description = "a .png file (one image), a .mp4/.webm/.gif file (one video) or a folder (default: ${DEFAULT-VALUE})")
    Path out;
    @Option(names = "--from", description = "repeat the generation recorded in this PNG or video (other options override it)")
    Path from;
    @Option(names = "--png-frames", description = "also write every video frame as a PNG into this folder")
    Path pngFrames;
    @Option(names = "--no-mmap", description = "read the weights into memory instead of mapping the checkpoint files, so that files changed or truncated while the model runs cannot affect (or crash) it")
    boolean noMmap;
    @Option(names = "--overwrite", description = "replace an --out file that exists; a folder is then numbered from 000 again, replacing files of the same names (default: never overwrite, continue a folder's numbering)")
    boolean overwrite;
    @Option(names = "--ignore-memory-check", description = "run even when the memory estimate exceeds the memory available (the run may be killed)")
    boolean ignoreMemoryCheck;
    @Option(names = "--preview", paramLabel = "PNG", description = "write a cheap preview of the first image (its latents mapped to RGB, "
            + "1/8 of the size) to this file after every step (FLUX, SD3)")
    Path preview;
    @Option(names = "--save-latents", description = "also write each image's final latents next to it (<image>.latents.safetensors, prompt in the "
            + "metadata): training pairs for `mmdit train`")
    boolean saveLatents;
    @Mixin
    RequestOptions requestOptions = new RequestOptions();
    @Mixin
    FamilyOptions familyOptions = new FamilyOptions();
    @Mixin
    ThreadsOption threads = new ThreadsOption();
    @Mixin
    GuidanceOptions guidance = new GuidanceOptions();
    @Mixin
    LoraOptions lora = new LoraOptions();

    @Override
    public Integer call() throws IOException {
        threads.apply();
        if (checkPlacement) io.mmdit4j.runtime.Placement.setEnabled(true);
        if (strictSync) io.mmdit4j.runtime.Transfers.setStrict(true);
        if (tf32) io.mmdit4j.runtime.Torch.setTf32(true);
        GenerationSettings.Recorded recorded = from == null ? null : Recordings.read(from);
        String modelArg = model != null ? model : recorded != null && recorded.model() != null ? recorded.model() : "flux-tiny-demo";
        if (adapter == null && recorded != null) { // a COSMOS record names the adapter its model was loaded with
            adapter = recorded.request().options().stream().filter(o -> o instanceof PooledAdapterFile).map(o -> ((PooledAdapterFile) o).file())
                    .findFirst().orElse(null);
        }
        LoadOptions.Builder load = LoadOptions.builder().device(DeviceSpec.parse(device)).vae(vae).textEncoders(textEncoders).adapter(adapter)
                .loras(lora.resolve(recorded)).loraStrict(lora.strict(recorded)).memoryMapped(!noMmap).checkMemory(!ignoreMemoryCheck);
        if (llama != null) load.component("text_encoder_4", llama).component("tokenizer_4", llama);
        if (offload != null) applyOffload(load, offload);
        if (cudaGraphs) load.cudaGraphs(true);
        Outputs.Existing existing = overwrite ? Outputs.Existing.REPLACE : Outputs.Existing.KEEP;
        if (dtype != null) load.dtype(DType.parse(dtype));
        else if (recorded != null && recorded.dtype() != null) load.dtype(recorded.dtype());
        PreparedModel prepared = Pipelines.prepare(modelArg, load.build());
        ModelDescriptor d = prepared.descriptor();
        if (d != null && d.isGenerated()) {
            Verbosity.note("%s", "note: " + d.name() + " is a bundled demo model (random weights): its " + (prepared.family().video() ? "videos" : "images")
                    + " look like noise. For real ones use --model with " + realModelHint(prepared.family().name()));
        }
        boolean video = prepared.family().video();
        List<GenerationRequest> requests = requests(recorded);
        int total = requests.stream().mapToInt(GenerationRequest::images).sum();
        Outputs.check(out, total, video, existing); // before the memory estimate: a bad --out is the simpler message
        List<GenerationSettings> all = new java.util.ArrayList<>();
        for (GenerationRequest request : requests) {
            GenerationSettings settings = prepared.resolve(request);
            prepared.warnings(settings).forEach(w -> Verbosity.note("mmdit: warning: %s", w));
            if (requests.size() == 1) Outputs.check(out, settings, video, existing);
            var memory = prepared.memory(settings);
            if (memory.chunks() > 1) {
                Verbosity.note("%d images in %d chunks of up to %d (memory estimate %s)", settings.images(), memory.chunks(),
                        memory.chunkImages(), memory.describe());
            }
            all.add(settings);
        }
        if (pngFrames != null) {
            if (!video) throw new IllegalArgumentException("--png-frames: the model makes images, not videos");
            Outputs.checkFramePngs(pngFrames, total, existing);
        }

        long t0 = System.nanoTime();
        try (Pipeline pipe = Progress.during("load " + prepared.path().getFileName(), prepared::load)) {
            Verbosity.note("loaded %s in %.1f s", prepared.path(), (System.nanoTime() - t0) / 1e9);
            for (LoraReport r : pipe.loraReports()) Verbosity.note("lora: %s", r.summary());
            for (int k = 0; k < all.size(); k++) {
                GenerationSettings settings = all.get(k);
                if (all.size() > 1) Verbosity.note("request %d of %d (%s)", k + 1, all.size(), requestLabel(settings));
                GenerationResult generated;
                try (Progress bar = Progress.of(all.size() > 1 ? "request " + (k + 1) : "generate", " it")) {
                    generated = pipe.generate(settings, step -> bar.onStep(step) && writePreview(step), null);
                }
                try (GenerationResult result = generated) {
                    if (result.isMeta()) { // shapes only: say what ran and what it asked for, write nothing
                        System.err.println(metaSummary(result));
                        continue;
                    }
                    // later requests continue the folder's numbering (after --overwrite's first one restarted it)
                    List<Path> files = result.save(out, k == 0 ? existing : Outputs.Existing.KEEP); // video first, then the optional PNG frames
                    if (pngFrames != null) Outputs.writeFramePngs(result, pngFrames, files, k == 0 ? existing : Outputs.Existing.KEEP);
                    if (saveLatents) files = withLatents(result, files);
                    Timings t = result.timings();
                    Verbosity.note("timing: text encode %.2f s, denoise %.2f s (%.2f s/step), decode %.2f s",
                            t.textEncode() / 1e9, t.denoise() / 1e9, t.denoise() / 1e9 / Math.max(1, t.steps().length), t.decode() / 1e9);
                    files.forEach(System.out::println);
                }
            }
        }
        return 0;
    }

    /** What a meta run did: the shapes it produced and the host<->device traffic of its steps (runtime.Transfers). */
    static String metaSummary(GenerationResult result) {
        Tensor out = result.isVideo() ? result.frames() : result.images();
        List<io.mmdit4j.runtime.Transfers.Counts> steps = io.mmdit4j.runtime.Transfers.lastLoop();
        long copies = steps.stream().mapToLong(c -> c.hostToDevice() + c.deviceToHost()).sum();
        long syncs = steps.stream().mapToLong(io.mmdit4j.runtime.Transfers.Counts::syncs).sum();
        Timings t = result.timings();
        return String.format(Locale.ROOT, "meta: shapes only, nothing written: %s %s, latents %s; %d steps, host<->device copies in the steps %d, "
                        + "host reads %d; host time %.2f ms/step", result.isVideo() ? "frames" : "images",
                java.util.Arrays.toString(io.mmdit4j.runtime.Tensors.shape(out)), java.util.Arrays.toString(io.mmdit4j.runtime.Tensors.shape(result.latents())),
                steps.size(), copies, syncs, t.denoise() / 1e6 / Math.max(1, steps.size()));
    }

    /** {@code --preview}: the first image's latent preview after every step, replacing the file (atomically). */
    private boolean writePreview(io.mmdit4j.sampling.StepListener.Step step) {
        if (preview == null) return true;
        org.bytedeco.pytorch.Tensor rgb = step.preview();
        if (rgb == null) return true; // a family without a latent-to-RGB map
        if (rgb.is_meta()) { // shapes only (--device meta): nothing to draw
            rgb.close();
            return true;
        }
        try (rgb; org.bytedeco.javacpp.PointerScope scope = new org.bytedeco.javacpp.PointerScope()) {
            io.mmdit4j.image.PngImages.write(preview, io.mmdit4j.image.PngImages.toRgb(rgb.select(0, 0)), java.util.Map.of());
        }
        return true;
    }

    private static String requestLabel(GenerationSettings s) {
        String p = s.prompts().get(0);
        return (p.length() > 40 ? p.substring(0, 37) + "..." : p) + (s.images() > 1 ? ", " + s.images() + " images" : "");
    }

    private static String realModelHint(String family) {
        return switch (family) {
            case "hunyuan-video" -> "a HunyuanVideo diffusers folder, e.g. $MMDIT_MODELS/HunyuanVideo";
            case "hidream" -> "a HiDream-I1 folder, e.g. hidream-i1-fast ($MMDIT_MODELS/HiDream-I1-Fast, with Meta-Llama-3.1-8B-Instruct)";
            case "cosmos" -> "cosmos-predict2-2b-pooled ($MMDIT_MODELS/Cosmos-Predict2-2B-Text2Image, cosmos-pooled and FLUX.1-schnell's CLIP-L)";
            default -> "a FLUX.1 folder, e.g. $MMDIT_MODELS/FLUX.1-schnell";
        };
    }

    /** Writes {@code <image>.latents.safetensors} next to each image (its latents row, prompt and seed in the metadata). */
    private static List<Path> withLatents(GenerationResult result, List<Path> images) {
        if (result.isVideo()) throw new IllegalArgumentException("--save-latents: images only");
        List<Path> all = new java.util.ArrayList<>(images);
        GenerationSettings s = result.settings();
        for (int i = 0; i < images.size(); i++) {
            Path file = images.get(i).resolveSibling(images.get(i).getFileName().toString().replaceFirst("\\.png$", "") + ".latents.safetensors");
            try (org.bytedeco.javacpp.PointerScope scope = new org.bytedeco.javacpp.PointerScope()) {
                io.mmdit4j.io.SafetensorsWriter.write(file, java.util.Map.of("latents", result.latents().select(0, i).contiguous()),
                        java.util.Map.of("prompt", s.prompt(i), "seed", String.valueOf(s.seeds()[i]), "model", String.valueOf(s.model())));
            }
            all.add(file);
        }
        return all;
    }

    /**
     * The requests: the options given, else the recorded image's values, else (left open) the model's defaults; one, or one
     * per line of a JSON Lines prompts file (its values over these).
     */
    private List<GenerationRequest> requests(GenerationSettings.Recorded recorded) throws IOException {
        GenerationRequest.Builder b = recorded != null ? recorded.request().toBuilder() : GenerationRequest.builder();
        requestOptions.apply(b, recorded == null);
        // the adapter loaded (--adapter, else the record's) is the one the record names; without one the pipeline adds its own
        if (adapter != null) b.option(new PooledAdapterFile(adapter));
        familyOptions.apply(b, recorded != null ? recorded.request() : null, requestOptions.steps);
        b.guidance(guidance.directions(recorded != null ? recorded.request().guidance() : List.of()));
        b.normControl(guidance.norm(recorded != null ? recorded.request().normControl() : null));
        List<PromptsFile.Line> lines = requestOptions.jsonLines();
        if (lines.isEmpty()) return List.of(b.build());
        List<GenerationRequest> out = new java.util.ArrayList<>();
        for (PromptsFile.Line line : lines) out.add(PromptsFile.request(b, requestOptions.promptsFile, line));
        return out;
    }

    /**
     * {@code --offload text|blocks|text,blocks|none}: what stays off the device (text encoders, transformer blocks).
     * {@code blocks} alone leaves the text encoders' default (offloaded when the weights exceed 3/4 of the memory).
     */
    static void applyOffload(LoadOptions.Builder load, String offload) {
        boolean text = false, blocks = false, none = false;
        for (String part : offload.toLowerCase(Locale.ROOT).split(",", -1)) {
            switch (part.strip()) {
                case "text" -> text = true;
                case "blocks" -> blocks = true;
                case "none" -> none = true;
                default -> throw new IllegalArgumentException("--offload " + offload + ": expected text, blocks, text,blocks or none");
            }
        }
        if (none && (text || blocks)) throw new IllegalArgumentException("--offload " + offload + ": none cannot be combined with text or blocks");
        if (text || none) load.offloadText(text);
        load.offloadBlocks(blocks);
    }
}
