package io.mmdit4j.golden;

import com.fasterxml.jackson.databind.JsonNode;
import io.mmdit4j.cosmos.CosmosPipeline;
import io.mmdit4j.cosmos.CosmosTransformer;
import io.mmdit4j.guidance.GuidanceTerm;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.guidance.StepWindow;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.sampling.Schedule;
import io.mmdit4j.vae.wan.AutoencoderKLWan;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code cosmos_pipeline} cases: the reference sampler end to end on the given T5 / CLIP outputs (the cases carry no text
 * encoders): Karras sigmas, start latent {@code 80·noise}, x0-form CFG with the unconditional pass on its own, guidance on
 * the conditional pass ({@code w} from {@code start_layer}), the Euler step on x0, the Wan VAE decode, frame 0 and its 8-bit
 * image. Runs {@link CosmosPipeline#sample}, the loop {@code generate} runs.
 */
public final class CosmosPipelineCases implements CaseRunner {

    @Override
    public List<CaseResult> run(GoldenCase c) {
        JsonNode model = c.spec().path("model");
        if (!model.hasNonNull("folder")) return List.of(CaseResult.error(c.name(), "-", "case names no model.folder"));
        Path folder = c.resolve(model.get("folder").asText());
        Path adapter = model.hasNonNull("adapter_safetensors") ? c.resolve(model.get("adapter_safetensors").asText()) : null;
        if (!Files.isDirectory(folder)) return List.of(CaseResult.error(c.name(), "-", "model not found: " + folder));
        DType compute = DType.parse(c.spec().path("compute_dtype").asText("float32"));
        JsonNode p = c.params();
        int steps = p.path("num_sigmas").asInt();
        double cfg = p.path("cfg_scale").asDouble(1.0), w = p.path("w").asDouble(0);
        int start = p.path("start_layer").asInt(0);
        boolean applyPooled = p.path("apply_clip_pooled").asBoolean(true);
        Map<String, Tensor> actual = new HashMap<>();
        try (CosmosTransformer t = CosmosTransformer.load(folder.resolve("transformer"), adapter, compute, DeviceSpec.CPU);
             CosmosPipeline pipe = new CosmosPipeline(null, t, AutoencoderKLWan.load(folder.resolve("vae"), compute, DeviceSpec.CPU),
                     CosmosPipeline.SchedulerConfig.read(folder.resolve("scheduler/scheduler_config.json")));
             SafetensorsFile in = c.inputs(); SafetensorsFile out = c.outputs(); PointerScope scope = new PointerScope()) {
            Schedule schedule = pipe.schedulerConfig().schedule(steps);
            actual.put("sigmas", Tensors.keep(schedule.sigmasTensor()));
            actual.put("timesteps", Tensors.keep(schedule.timestepsTensor()));
            boolean cfgOn = cfg > 1;
            Tensor pos = in.info("pooled_prompt_embeds_positive") != null ? in.load("pooled_prompt_embeds_positive") : null;
            ModulationGuidance.Builder b = ModulationGuidance.builder();
            if (pos != null) {
                Tensor delta = t.guidanceDelta(pos, in.load("pooled_prompt_embeds_negative"));
                b.add(new GuidanceTerm("case", delta, w, LayerSchedule.from(start), StepWindow.all(), cfgOn ? new double[] {0, 1} : null));
            }
            Tensor noise = in.load("noise");
            CosmosPipeline.Conditioning cond = new CosmosPipeline.Conditioning(Tensors.keep(in.load("prompt_embeds")),
                    applyPooled ? Tensors.keep(in.load("pooled_prompt_embeds")) : null,
                    cfgOn ? Tensors.keep(in.load("uncond_prompt_embeds")) : null,
                    cfgOn && applyPooled ? Tensors.keep(in.load("uncond_pooled_prompt_embeds")) : null);
            try (ModulationGuidance plan = b.build(); cond) {
                Tensor latents = pipe.sample(noise, cond, plan, steps, cfg, null);
                actual.put("final_latents", latents);
                Tensor z = pipe.vae().denormalize(latents, pipe.schedulerConfig().sigmaData());
                actual.put("decoder_input", z);
                Tensor decoded = pipe.vae().decode(z);
                actual.put("decoded", decoded);
                Tensor image = Tensors.keep(pipe.vae().toVideo(decoded).select(1, 0).contiguous());
                actual.put("image", image);
                actual.put("image_uint8", Tensors.keep(image.mul(new Scalar(255.0)).round().permute(0, 2, 3, 1).to(ScalarType.Byte).contiguous()));
            }
            return Outputs.compare(c, c.name(), actual, out);
        } catch (RuntimeException e) {
            return List.of(CaseResult.failed(c.name(), "-", e));
        } finally {
            Tensors.closeAll(actual.values());
        }
    }
}
