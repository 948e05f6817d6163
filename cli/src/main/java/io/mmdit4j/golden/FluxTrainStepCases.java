package io.mmdit4j.golden;

import com.fasterxml.jackson.databind.JsonNode;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.train.FlowMatching;
import io.mmdit4j.train.FluxTrainable;
import io.mmdit4j.train.FluxTrainer;
import io.mmdit4j.train.GradNorms;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code flux_train_step} cases: one or more rectified-flow training steps of the tiny FLUX transformer (full fine-tune or
 * LoRA with the base frozen) through {@link FluxTrainer}, with the case's noise and timesteps in place of random draws:
 * loss, raw gradients of the tracked parameters, per-tensor and global gradient norms, the clip coefficient and the
 * parameters after each AdamW step.
 */
public final class FluxTrainStepCases implements CaseRunner {

    @Override
    public List<CaseResult> run(GoldenCase c) {
        return CaseRunner.withModel(c, "diffusers_folder", folder -> runFrom(c, folder));
    }

    private List<CaseResult> runFrom(GoldenCase c, Path folder) {
        JsonNode p = c.params();
        boolean lora = p.path("mode").asText("full").equals("lora");
        int steps = p.path("steps").asInt(1);
        double lr = p.path("optimizer").path("lr").asDouble(p.path("lr").asDouble());
        double wd = p.path("optimizer").path("weight_decay").asDouble(p.path("weight_decay").asDouble(0));
        JsonNode betas = p.path("optimizer").path("betas");
        FluxTrainer.Optim optim = new FluxTrainer.Optim(lr, wd, betas.path(0).asDouble(0.9), betas.path(1).asDouble(0.999),
                p.path("optimizer").path("eps").asDouble(1e-8));
        double maxNorm = p.path("max_grad_norm").isNumber() ? p.get("max_grad_norm").asDouble() : 0;
        FlowMatching.Scheme scheme = FlowMatching.Scheme.parse(p.path("weighting_scheme").asText("none"));
        List<String> order = strings(p.path("trainable_parameters"));
        List<String> tracked = strings(p.path("tracked_parameters"));
        Map<String, Tensor> actual = new LinkedHashMap<>();
        try (SafetensorsFile in = c.inputs(); SafetensorsFile out = c.outputs();
             FluxTrainable model = FluxTrainable.load(folder, !lora)) {
            if (lora) {
                JsonNode l = p.path("lora");
                Map<String, Tensor> init = new LinkedHashMap<>();
                try (PointerScope scope = new PointerScope()) {
                    for (String k : in.keys()) if (k.startsWith("lora.")) init.put(k.substring(5), in.load(k));
                    model.addLora(strings(l.path("target_modules")), l.path("r").asInt(), l.path("alpha").asDouble(l.path("r").asDouble()), init, 0);
                }
                if (tracked.isEmpty()) tracked = new ArrayList<>(model.lora().keySet());
            }
            if (order.isEmpty()) order = new ArrayList<>(model.trainable().keySet());
            List<Tensor> inOrder = new ArrayList<>();
            for (String n : order) {
                Tensor t = model.trainable().get(n);
                if (t == null) return List.of(CaseResult.error(c.name(), "-", "the case trains '" + n + "', which this model does not train"));
                inOrder.add(t);
            }
            if (inOrder.size() != model.trainable().size()) {
                return List.of(CaseResult.error(c.name(), "-", "the case trains " + inOrder.size() + " tensors, this model " + model.trainable().size()));
            }
            try (FluxTrainer trainer = new FluxTrainer(model, optim); PointerScope scope = new PointerScope()) {
                Tensor guidance = in.info("guidance") != null ? in.load("guidance")
                        : model.config().guidanceEmbeds() ? guidanceOf(p, in.load("model_input").size(0)) : null;
                FluxTrainer.Batch batch = new FluxTrainer.Batch(in.load("model_input"), in.load("prompt_embeds"), in.load("pooled_prompt_embeds"),
                        in.load("text_ids"), in.load("latent_image_ids"), guidance);
                for (int s = 1; s <= steps; s++) {
                    Tensor timesteps = in.load("timesteps.step" + s);
                    Tensor sigmas = timesteps.div(new org.bytedeco.pytorch.Scalar(1000.0)); // what the script passes as the timestep
                    double loss = trainer.lossAndBackward(batch, in.load("noise.step" + s), sigmas, scheme, null);
                    put(actual, "loss.step" + s, Tensors.fromFloats(new float[] {(float) loss}));
                    for (String n : tracked) {
                        Tensor g = model.trainable().get(n).grad();
                        if (g != null && g.defined()) put(actual, "grad.step" + s + "." + n, g.detach().clone());
                    }
                    GradNorms.Result r = trainer.clip(inOrder, maxNorm);
                    float[] per = new float[r.perTensor().length];
                    for (int i = 0; i < per.length; i++) per[i] = (float) r.perTensor()[i];
                    put(actual, "grad_norm.step" + s, Tensors.fromFloats(new float[] {(float) r.total()}));
                    put(actual, "grad_norm_per_param.step" + s, Tensors.fromFloats(per, per.length));
                    put(actual, "clip_coef.step" + s, Tensors.fromFloats(new float[] {(float) r.clipCoef()}));
                    trainer.step(lr);
                    for (String n : tracked) put(actual, "param.step" + s + "." + n, model.trainable().get(n).detach().clone());
                }
            }
            return Outputs.compare(c, c.name(), actual, out);
        } finally {
            actual.values().forEach(Native::release);
        }
    }

    private static Tensor guidanceOf(JsonNode p, long batch) {
        float[] g = new float[(int) batch];
        java.util.Arrays.fill(g, (float) p.path("guidance_scale").asDouble(3.5));
        return Tensors.fromFloats(g, batch);
    }

    /** Keeps {@code t} (a scalar shape for one-element losses and norms) under {@code key}. */
    private static void put(Map<String, Tensor> m, String key, Tensor t) {
        Tensor v = t.numel() == 1 && !key.startsWith("grad_norm_per_param") && !key.startsWith("grad.") && !key.startsWith("param.") ? t.reshape() : t;
        Native.release(m.put(key, Native.keep(v)));
    }

    private static List<String> strings(JsonNode a) {
        List<String> out = new ArrayList<>();
        if (a.isArray()) a.forEach(n -> out.add(n.asText()));
        return out;
    }
}
