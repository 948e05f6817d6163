package io.mmdit4j.golden;

import com.fasterxml.jackson.databind.JsonNode;
import io.mmdit4j.flux.FluxLatents;
import io.mmdit4j.flux.FluxPipeline;
import io.mmdit4j.flux.FluxTextEncoders;
import io.mmdit4j.guidance.CfgRows;
import io.mmdit4j.guidance.Direction;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.pipeline.ClassifierFreeGuidance;
import io.mmdit4j.pipeline.CustomSigmas;
import io.mmdit4j.pipeline.EmbeddedGuidance;
import io.mmdit4j.pipeline.GenerationRequest;
import io.mmdit4j.pipeline.GenerationResult;
import io.mmdit4j.pipeline.GenerationSettings;
import io.mmdit4j.pipeline.LoadOptions;
import io.mmdit4j.pipeline.Pipeline;
import io.mmdit4j.pipeline.Pipelines;
import io.mmdit4j.pipeline.SchedulerShift;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.sampling.StepListener;
import io.mmdit4j.sd3.Sd3Pipeline;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import io.mmdit4j.image.PngImages;
import io.mmdit4j.pipeline.FamilyPipeline;
import io.mmdit4j.pipeline.GivenDraws;
import io.mmdit4j.pipeline.ImageToImage;
import io.mmdit4j.pipeline.InitImage;
import io.mmdit4j.pipeline.LatentSpace;
import io.mmdit4j.pipeline.InpaintMask;
import io.mmdit4j.pipeline.InputImages;
import io.mmdit4j.pipeline.ScaleWise;
import io.mmdit4j.sampling.Schedule;
import io.mmdit4j.vae.AutoencoderKL;
import org.bytedeco.pytorch.Scalar;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code flux_pipeline} and {@code sd3_pipeline} cases: the whole diffusers pipeline call on a model folder, through the
 * engine's one generation API ({@link Pipelines}, {@link GenerationRequest}, the shared skeleton), plus the text
 * conditioning and the raw VAE output the cases also record. The same runner serves the image-to-image, inpainting and
 * scale-wise areas ({@link Start}): their init images and masks go through PNG files as a user's would, and the random
 * draws come from {@code params.seed} when the case makes one image (each image's own generator is then the reference's one
 * generator, so the order of the draws is checked too), else are given as the case recorded them (one generator drew for
 * the whole batch).
 */
final class PipelineCases implements CaseRunner {
    /** How a case's denoising starts. */
    enum Start {
        /** From the case's noise ({@code flux_pipeline}, {@code sd3_pipeline}). */
        NOISE,
        /** From init images at a strength ({@code *_img2img_pipeline}). */
        IMAGE,
        /** From init images and masks ({@code flux_inpaint_pipeline}). */
        INPAINT,
        /** Scale-wise sampling from seeded noise ({@code sd3_swd_pipeline}). */
        SCALE_WISE
    }

    private final Start start;

    PipelineCases() {
        this(Start.NOISE);
    }

    PipelineCases(Start start) {
        this.start = start;
    }

    @Override
    public List<CaseResult> run(GoldenCase c) {
        return CaseRunner.withModel(c, "diffusers_pipeline_folder", folder -> runFrom(c, folder));
    }

    private List<CaseResult> runFrom(GoldenCase c, Path folder) {
        JsonNode p = c.params();
        Map<String, Tensor> actual = new HashMap<>();
        Path tmp = null;
        try (Pipeline pipe = Pipelines.load(folder, LoadOptions.builder().dtype(c.computeDtype()).loras(List.of()).build());
             SafetensorsFile in = c.inputs(); SafetensorsFile out = c.outputs(); PointerScope scope = new PointerScope()) {
            GenerationRequest.Builder b = request(p, pipe, start == Start.NOISE ? noise(p, in, pipe) : null).toBuilder();
            if (start != Start.NOISE) {
                tmp = Files.createTempDirectory("mmdit-golden");
                startOptions(p, in, tmp, b);
            }
            GenerationSettings s = pipe.resolve(b.build());
            if (s.images() > 1 && start != Start.NOISE) s = pipe.resolve(b.option(new GivenDraws(draws(p, in, s.images()))).build());
            conditioning(pipe, s, actual);
            if (start == Start.IMAGE || start == Start.INPAINT) imageStart(pipe, s, in, actual);
            try (GenerationResult r = pipe.generate(s, StepListener.NONE, null)) {
                actual.put("final_latents", Tensors.keep(r.latents().clone()));
                actual.put("image", Tensors.keep(r.images().clone()));
                Tensor unpacked = r.latents();
                if (pipe.family().name().equals("flux")) {
                    unpacked = FluxLatents.unpack(r.latents(), 2L * (s.height() / 16), 2L * (s.width() / 16)).contiguous();
                    actual.put("final_latents_unpacked", Tensors.keep(unpacked.clone()));
                }
                actual.put("decoded", vaeDecode(pipe, unpacked));
            }
            return Outputs.compare(c, c.name(), actual, out);
        } catch (RuntimeException | IOException e) {
            return List.of(CaseResult.failed(c.name(), "-", e));
        } finally {
            Tensors.closeAll(actual.values());
            deleteTree(tmp);
        }
    }

    /**
     * The options of a case that does not start from given noise: the init images and masks written as PNG files (8-bit
     * RGB, 8-bit grey), the strength, the seed; scale-wise sampling's scales, unshifted sigmas and noise cast.
     */
    private void startOptions(JsonNode p, SafetensorsFile in, Path tmp, GenerationRequest.Builder b) throws IOException {
        b.seed(p.path("seed").asLong());
        if (start == Start.SCALE_WISE) {
            JsonNode sc = p.path("scales");
            int[] scales = new int[sc.size()];
            for (int i = 0; i < scales.length; i++) scales[i] = sc.get(i).asInt();
            b.size(8 * scales[scales.length - 1], 8 * scales[scales.length - 1]); // the request's size is the last scale's image
            b.option(new ScaleWise(scales, p.path("noise_cast").asText("").startsWith("float16")));
            JsonNode sg = p.path("sigmas");
            double[] sigmas = new double[sg.size()];
            for (int i = 0; i < sigmas.length; i++) sigmas[i] = sg.get(i).asDouble();
            b.option(CustomSigmas.of(sigmas)); // used exactly as given: the SwD loop has no scheduler
            return;
        }
        b.option(InitImage.of(writePngs(in.load("init_image"), tmp, "init", false), p.path("strength").asDouble()));
        if (start == Start.INPAINT) b.option(InpaintMask.of(writePngs(in.load("mask_image"), tmp, "mask", true)));
    }

    /**
     * The draws of a batch as the case recorded them, in the engine's order: img2img / inpainting the posterior samples
     * (one per init image, repeated to the batch as diffusers repeats the images) then the noise; scale-wise sampling the
     * initial latents then each step's noise.
     */
    private List<Tensor> draws(JsonNode p, SafetensorsFile in, int images) {
        List<Tensor> d = new ArrayList<>();
        if (start == Start.SCALE_WISE) {
            d.add(in.load("initial_latents"));
            for (int i = 0; in.info("step_noise_" + i) != null; i++) d.add(in.load("step_noise_" + i));
            return d;
        }
        Tensor eps = in.load("vae_posterior_eps");
        d.add(eps.size(0) == images ? eps : eps.repeat(images / eps.size(0), 1, 1, 1));
        d.add(in.load("noise"));
        return d;
    }

    /**
     * What the image cases record about the start: the init latents and the noised start (the engine's own
     * {@link ImageToImage#start}), the schedule after the strength truncation, and for inpainting the binarised masks, their
     * latent-size version and the masked image's latents (which only Fill-type models read; computed here from the recorded
     * posterior sample).
     */
    private void imageStart(Pipeline pipe, GenerationSettings s, SafetensorsFile in, Map<String, Tensor> actual) {
        FamilyPipeline<?> f = pipe.unwrap(FamilyPipeline.class);
        Schedule schedule = ImageToImage.truncate(f.schedule(s), s);
        long[] shape = f.latentSpace().shape(s);
        try (ImageToImage.Start st = ImageToImage.start(f, s, schedule)) {
            actual.put("image_latents", unpacked(pipe, st.imageLatents(), shape));
            actual.put("initial_latents", unpacked(pipe, st.latents(), shape));
        }
        actual.put("timesteps", schedule.timestepsTensor());
        actual.put("sigmas", schedule.sigmasTensor());
        if (start != Start.INPAINT) return;
        InpaintMask m = s.option(InpaintMask.class);
        Tensor cond = InputImages.masks(m.masks(), s.width(), s.height());
        actual.put("mask_condition", cond);
        actual.put("mask_latent", ImageToImage.maskLatent(s, shape));
        LatentSpace space = f.latentSpace();
        Tensor pixels = InputImages.pixels(s.option(InitImage.class).images(), s.width(), s.height(), "init image");
        Tensor masked = pixels.mul(cond.lt(new Scalar(0.5)));
        try (AutoencoderKL.Encoded posterior = space.encode(masked, s)) {
            Tensor latents = space.scale(posterior.sample(in.load("masked_image_posterior_eps")));
            actual.put("masked_image_latents", Tensors.keep(latents.repeat(s.images() / latents.size(0), 1, 1, 1)));
        }
    }

    /** Latents of the sampler's layout as {@code [B, C, h, w]}; owned. */
    private static Tensor unpacked(Pipeline pipe, Tensor latents, long[] shape) {
        if (!pipe.family().name().equals("flux")) return Tensors.keep(latents.clone());
        return Tensors.keep(FluxLatents.unpack(latents, shape[2], shape[3]).contiguous());
    }

    /** uint8 {@code [n, H, W, 3]} (or {@code [n, H, W]} grey) as PNG files. */
    private static List<Path> writePngs(Tensor u8, Path dir, String name, boolean grey) {
        List<Path> files = new ArrayList<>();
        int n = (int) u8.size(0), h = (int) u8.size(1), w = (int) u8.size(2);
        byte[] all = new byte[(int) u8.numel()];
        new org.bytedeco.javacpp.BytePointer(u8.contiguous().data_ptr()).get(all);
        int per = all.length / n;
        for (int i = 0; i < n; i++) {
            BufferedImage img = new BufferedImage(w, h, grey ? BufferedImage.TYPE_BYTE_GRAY : BufferedImage.TYPE_INT_RGB);
            for (int y = 0; y < h; y++) {
                for (int x = 0; x < w; x++) {
                    int o = i * per + (y * w + x) * (grey ? 1 : 3);
                    if (grey) img.getRaster().setSample(x, y, 0, all[o] & 255);
                    else img.setRGB(x, y, ((all[o] & 255) << 16) | ((all[o + 1] & 255) << 8) | (all[o + 2] & 255));
                }
            }
            Path f = dir.resolve(name + i + ".png");
            PngImages.write(f, img, Map.of());
            files.add(f);
        }
        return files;
    }

    private static void deleteTree(Path dir) {
        if (dir == null) return;
        try (var walk = Files.walk(dir)) {
            walk.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        } catch (IOException ignored) {
            // a temporary folder: left for the system to clean
        }
    }

    /**
     * The request a case describes. {@code guidance_scale} is the model's embedded guidance where it has one, else
     * classifier-free guidance. An explicit sigma list ({@code sigmas_argument}) goes through diffusers'
     * {@code set_timesteps(sigmas=)}, i.e. shifted by the scheduler's shift, which the case may override
     * ({@code scheduler_override.shift}); the DMD2 case overrides it with 1.0, so its recipe reaches the model as given.
     */
    static GenerationRequest request(JsonNode p, Pipeline pipe, Tensor noise) {
        GenerationRequest.Builder b = GenerationRequest.builder().imagesPerPrompt(p.path("num_images_per_prompt").asInt(1))
                .size(p.path("width").asInt(), p.path("height").asInt())
                .maxSequenceLength(p.path("max_sequence_length").asInt(pipe.defaults().maxSequenceLength())).initialNoise(noise);
        if (p.path("num_inference_steps").isNumber()) b.steps(p.path("num_inference_steps").asInt()); // else the sigma list's
        p.path("prompts").forEach(n -> b.prompt(n.asText()));
        JsonNode g = p.path("guidance_scale");
        if (g.isNumber()) {
            if (pipe.supportedOptions().contains(EmbeddedGuidance.class)) b.option(new EmbeddedGuidance(g.asDouble()));
            else if (pipe.supportedOptions().contains(ClassifierFreeGuidance.class)) b.option(new ClassifierFreeGuidance(g.asDouble(), negatives(p)));
        }
        JsonNode sa = p.path("sigmas_argument");
        if (sa.isArray()) {
            double[] sigmas = new double[sa.size()];
            for (int i = 0; i < sigmas.length; i++) sigmas[i] = sa.get(i).asDouble();
            b.option(new CustomSigmas(sigmas, true));
        }
        JsonNode shift = p.path("scheduler_override").path("shift");
        if (shift.isNumber()) b.option(new SchedulerShift(shift.asDouble()));
        JsonNode mg = p.path("modulation_guidance");
        if (mg.isObject()) {
            b.guide(Direction.of(mg.path("pos_prompt").asText(), mg.path("neg_prompt").asText()).label("case").w(mg.path("w").asDouble())
                    .layers(CaseGuidance.layers(mg)).rows(CfgRows.parse(mg.path("rows").asText("both"))));
        }
        return b.build();
    }

    private static List<String> negatives(JsonNode p) {
        List<String> out = new ArrayList<>();
        JsonNode np = p.path("negative_prompt");
        if (np.isTextual()) out.add(np.asText());
        else if (np.isArray()) np.forEach(n -> out.add(n.asText()));
        return out;
    }

    /** The initial noise in the family's unpacked layout: {@code noise_unpacked}, else {@code latents} (FLUX's packed, unpacked here). */
    private static Tensor noise(JsonNode p, SafetensorsFile in, Pipeline pipe) {
        if (in.info("noise_unpacked") != null) return in.load("noise_unpacked");
        Tensor latents = in.load("latents");
        if (!pipe.family().name().equals("flux")) return latents;
        return FluxLatents.unpack(latents, p.path("latent_hw").get(0).asLong(), p.path("latent_hw").get(1).asLong());
    }

    /** The text conditioning the cases record: prompt (and negative) embeddings, and the pooled vectors of the guidance prompts. */
    private static void conditioning(Pipeline pipe, GenerationSettings s, Map<String, Tensor> actual) {
        long b = s.images();
        Direction d = s.guidance().isEmpty() ? null : s.guidance().get(0);
        if (pipe.family().name().equals("flux")) {
            FluxPipeline f = pipe.unwrap(FluxPipeline.class);
            try (FluxTextEncoders.Embeddings e = f.encode(s)) {
                actual.put("prompt_embeds", Tensors.keep(e.promptEmbeds().clone()));
                actual.put("pooled_prompt_embeds", Tensors.keep(e.pooled().clone()));
                actual.put("text_ids", Tensors.keep(e.textIds().clone()));
            }
            if (d != null) {
                actual.put("pooled_pos", Tensors.keep(f.textEncoders().pooled(List.of(d.pos())).expand(new long[] {b, -1}, false).contiguous()));
                actual.put("pooled_neg", Tensors.keep(f.textEncoders().pooled(List.of(d.neg())).expand(new long[] {b, -1}, false).contiguous()));
            }
        } else {
            Sd3Pipeline f = pipe.unwrap(Sd3Pipeline.class);
            try (Sd3Pipeline.Conditioning cond = f.encode(s)) {
                actual.put("prompt_embeds", Tensors.keep(cond.positive().promptEmbeds().clone()));
                actual.put("pooled_prompt_embeds", Tensors.keep(cond.positive().pooled().clone()));
                if (cond.negative() != null) {
                    actual.put("negative_prompt_embeds", Tensors.keep(cond.negative().promptEmbeds().clone()));
                    actual.put("negative_pooled_prompt_embeds", Tensors.keep(cond.negative().pooled().clone()));
                }
            }
            if (d != null) {
                actual.put("pooled_pos", Tensors.keep(f.textEncoders().pooled(List.of(d.pos())).expand(new long[] {b, -1}, false).contiguous()));
                actual.put("pooled_neg", Tensors.keep(f.textEncoders().pooled(List.of(d.neg())).expand(new long[] {b, -1}, false).contiguous()));
            }
        }
    }

    /** The raw VAE output {@code vae.decode(z/scaling + shift)} in [-1, 1] of unpacked latents. Owned by the caller. */
    private static Tensor vaeDecode(Pipeline pipe, Tensor unpacked) {
        return pipe.family().name().equals("flux") ? pipe.unwrap(FluxPipeline.class).vae().decodeScaled(unpacked)
                : pipe.unwrap(Sd3Pipeline.class).vae().decodeScaled(unpacked);
    }
}
