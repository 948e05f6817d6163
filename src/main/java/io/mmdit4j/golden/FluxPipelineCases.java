package io.mmdit4j.golden;

import com.fasterxml.jackson.databind.JsonNode;
import io.mmdit4j.flux.FluxLatents;
import io.mmdit4j.flux.FluxPipeline;
import io.mmdit4j.flux.FluxTextEncoders;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.sampling.Progress;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** {@code flux_pipeline} cases: the whole FluxPipeline call (text encoders, loop with guidance, VAE) on a model folder. */
final class FluxPipelineCases implements CaseRunner {

    @Override
    public List<CaseResult> run(GoldenCase c) {
        JsonNode p = c.params();
        String folder = c.spec().path("model").path("diffusers_pipeline_folder").asText("");
        if (folder.isEmpty()) return List.of(CaseResult.error(c.name(), "-", "case names no model.diffusers_pipeline_folder"));
        DType dtype = DType.parse(c.spec().path("compute_dtype").asText("float32"));
        Map<String, Tensor> actual = new HashMap<>();
        try (FluxPipeline pipe = FluxPipeline.load(c.resolve(folder), dtype, DeviceSpec.CPU);
             SafetensorsFile in = c.inputs(); SafetensorsFile out = c.outputs(); PointerScope scope = new PointerScope()) {
            List<String> prompts = new ArrayList<>();
            p.path("prompts").forEach(n -> prompts.add(n.asText()));
            List<FluxPipeline.Direction> dirs = new ArrayList<>();
            JsonNode mg = p.path("modulation_guidance");
            if (mg.isObject()) {
                dirs.add(new FluxPipeline.Direction("case", mg.path("pos_prompt").asText(), mg.path("neg_prompt").asText(), mg.path("w").asDouble(),
                        CaseGuidance.layers(mg), null, null));
            }
            Tensor noise = in.info("noise_unpacked") != null ? in.load("noise_unpacked")
                    : FluxLatents.unpack(in.load("latents"), p.path("latent_hw").get(0).asLong(), p.path("latent_hw").get(1).asLong());
            FluxPipeline.Request r = new FluxPipeline.Request(prompts, p.path("num_images_per_prompt").asInt(1), p.path("width").asInt(),
                    p.path("height").asInt(), p.path("num_inference_steps").asInt(), p.path("guidance_scale").asDouble(3.5), null,
                    p.path("max_sequence_length").asInt(512), dirs, noise);
            try (FluxTextEncoders.Embeddings emb = pipe.encode(r); ModulationGuidance g = pipe.guidance(r)) {
                actual.put("prompt_embeds", Tensors.keep(emb.promptEmbeds().clone()));
                actual.put("pooled_prompt_embeds", Tensors.keep(emb.pooled().clone()));
                actual.put("text_ids", Tensors.keep(emb.textIds().clone()));
                if (!dirs.isEmpty()) {
                    long b = r.batch();
                    actual.put("pooled_pos", Tensors.keep(pipe.textEncoders().pooled(List.of(dirs.get(0).pos())).expand(new long[] {b, -1}, false).contiguous()));
                    actual.put("pooled_neg", Tensors.keep(pipe.textEncoders().pooled(List.of(dirs.get(0).neg())).expand(new long[] {b, -1}, false).contiguous()));
                }
                Tensor last;
                try (Tensor start = pipe.noise(r)) {
                    last = pipe.denoise(r, emb, start, g, Progress.NONE, null, null);
                }
                actual.put("final_latents", last);
                long h = 2L * (r.height() / 16), w = 2L * (r.width() / 16);
                Tensor unpacked = FluxLatents.unpack(last, h, w);
                actual.put("final_latents_unpacked", Tensors.keep(unpacked.contiguous()));
                Tensor decoded = pipe.vae().decodeScaled(unpacked);
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
}
