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

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code flux_pipeline} and {@code sd3_pipeline} cases: the whole diffusers pipeline call on a model folder, through the
 * engine's one generation API ({@link Pipelines}, {@link GenerationRequest}, the shared skeleton), plus the text
 * conditioning and the raw VAE output the cases also record.
 */
final class PipelineCases implements CaseRunner {

    @Override
    public List<CaseResult> run(GoldenCase c) {
        return CaseRunner.withModel(c, "diffusers_pipeline_folder", folder -> runFrom(c, folder));
    }

    private static List<CaseResult> runFrom(GoldenCase c, java.nio.file.Path folder) {
        JsonNode p = c.params();
        Map<String, Tensor> actual = new HashMap<>();
        try (Pipeline pipe = Pipelines.load(folder, LoadOptions.builder().dtype(c.computeDtype()).loras(List.of()).build());
             SafetensorsFile in = c.inputs(); SafetensorsFile out = c.outputs(); PointerScope scope = new PointerScope()) {
            GenerationSettings s = pipe.resolve(request(p, pipe, noise(p, in, pipe)));
            conditioning(pipe, s, actual);
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
        } catch (RuntimeException e) {
            return List.of(CaseResult.failed(c.name(), "-", e));
        } finally {
            Tensors.closeAll(actual.values());
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
                .size(p.path("width").asInt(), p.path("height").asInt()).steps(p.path("num_inference_steps").asInt())
                .maxSequenceLength(p.path("max_sequence_length").asInt(pipe.defaults().maxSequenceLength())).initialNoise(noise);
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
