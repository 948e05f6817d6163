package io.mmdit4j.golden;

import com.fasterxml.jackson.databind.JsonNode;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.sampling.Progress;
import io.mmdit4j.sd3.Sd3Pipeline;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code sd3_pipeline} cases: the whole StableDiffusion3Pipeline call (three text encoders, CFG on [negative; positive],
 * modulation guidance on both halves, custom sigmas, VAE) on a model folder.
 */
final class Sd3PipelineCases implements CaseRunner {

    @Override
    public List<CaseResult> run(GoldenCase c) {
        JsonNode p = c.params();
        String folder = c.spec().path("model").path("diffusers_pipeline_folder").asText("");
        if (folder.isEmpty()) return List.of(CaseResult.error(c.name(), "-", "case names no model.diffusers_pipeline_folder"));
        DType dtype = DType.parse(c.spec().path("compute_dtype").asText("float32"));
        Map<String, Tensor> actual = new HashMap<>();
        try (Sd3Pipeline pipe = Sd3Pipeline.load(c.resolve(folder), dtype, DeviceSpec.CPU);
             SafetensorsFile in = c.inputs(); SafetensorsFile out = c.outputs(); PointerScope scope = new PointerScope()) {
            Sd3Pipeline.Request r = request(p, in.load("latents"));
            try (Sd3Pipeline.Conditioning cond = pipe.encode(r); ModulationGuidance g = pipe.guidance(r)) {
                actual.put("prompt_embeds", Tensors.keep(cond.positive().promptEmbeds().clone()));
                actual.put("pooled_prompt_embeds", Tensors.keep(cond.positive().pooled().clone()));
                if (cond.negative() != null) {
                    actual.put("negative_prompt_embeds", Tensors.keep(cond.negative().promptEmbeds().clone()));
                    actual.put("negative_pooled_prompt_embeds", Tensors.keep(cond.negative().pooled().clone()));
                }
                if (!r.guidance().isEmpty()) {
                    long b = r.batch();
                    Sd3Pipeline.Direction d = r.guidance().get(0);
                    actual.put("pooled_pos", Tensors.keep(pipe.textEncoders().pooled(List.of(d.pos())).expand(new long[] {b, -1}, false).contiguous()));
                    actual.put("pooled_neg", Tensors.keep(pipe.textEncoders().pooled(List.of(d.neg())).expand(new long[] {b, -1}, false).contiguous()));
                }
                Tensor last;
                try (Tensor start = pipe.noise(r)) {
                    last = pipe.denoise(r, cond, start, g, Progress.NONE, null);
                }
                actual.put("final_latents", last);
                Tensor decoded = pipe.vae().decodeScaled(last);
                actual.put("decoded", decoded);
                actual.put("image", pipe.vae().toImage(decoded));
            }
            return Outputs.compare(c, c.name(), actual, out);
        } catch (RuntimeException e) {
            return List.of(CaseResult.failed(c.name(), "-", e));
        } finally {
            Tensors.closeAll(actual.values());
        }
    }

    /**
     * The request a case describes. An explicit sigma list ({@code sigmas_argument}) goes through diffusers'
     * {@code set_timesteps(sigmas=)}, i.e. shifted by the scheduler's shift, which the case may override
     * ({@code scheduler_override.shift}); the DMD2 case overrides it with 1.0, so its recipe reaches the model as given.
     */
    static Sd3Pipeline.Request request(JsonNode p, Tensor latents) {
        List<String> prompts = new ArrayList<>();
        p.path("prompts").forEach(n -> prompts.add(n.asText()));
        List<String> negatives = null;
        JsonNode np = p.path("negative_prompt");
        if (np.isTextual()) negatives = List.of(np.asText());
        else if (np.isArray()) {
            negatives = new ArrayList<>();
            for (JsonNode n : np) negatives.add(n.asText());
        }
        List<Sd3Pipeline.Direction> dirs = new ArrayList<>();
        JsonNode mg = p.path("modulation_guidance");
        if (mg.isObject()) {
            dirs.add(new Sd3Pipeline.Direction("case", mg.path("pos_prompt").asText(), mg.path("neg_prompt").asText(), mg.path("w").asDouble(),
                    CaseGuidance.layers(mg), null, null,
                    Sd3Pipeline.CfgRows.parse(mg.path("rows").asText("both"))));
        }
        double[] sigmas = null;
        JsonNode sa = p.path("sigmas_argument");
        if (sa.isArray()) {
            sigmas = new double[sa.size()];
            for (int i = 0; i < sigmas.length; i++) sigmas[i] = sa.get(i).asDouble();
        }
        JsonNode shift = p.path("scheduler_override").path("shift");
        return new Sd3Pipeline.Request(prompts, negatives, p.path("num_images_per_prompt").asInt(1), p.path("width").asInt(),
                p.path("height").asInt(), p.path("num_inference_steps").asInt(), p.path("guidance_scale").asDouble(7.0), null,
                p.path("max_sequence_length").asInt(256), sigmas, sigmas != null, shift.isNumber() ? shift.asDouble() : null, dirs, latents);
    }
}
