package io.mmdit4j.train;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.mmdit4j.io.ParameterShapes;
import io.mmdit4j.io.RandomWeights;
import io.mmdit4j.io.SafetensorsWriter;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Files2;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.shapes.Scene;
import io.mmdit4j.shapes.ShapesWorld;
import io.mmdit4j.vae.AutoencoderKL;
import io.mmdit4j.vae.VaeConfig;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.AdamW;
import org.bytedeco.pytorch.AdamWOptions;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

import static org.bytedeco.pytorch.global.torch.cat;
import static org.bytedeco.pytorch.global.torch.createCPUGenerator;
import static org.bytedeco.pytorch.global.torch.exp;
import static org.bytedeco.pytorch.global.torch.randn;

/**
 * Trains a diffusers {@code AutoencoderKL} (the engine's own encoder and decoder modules, with autograd) on shapes-world
 * pictures: {@code z = mean + std·ε} from the encoder's posterior, loss = MSE(decode(z), x) + β·KL(posterior ‖ N(0, 1)),
 * AdamW, warm-up + cosine learning rate, gradient clipping at 1. Every step draws fresh scenes ({@code world.scene(s·B + j)}).
 * Afterwards {@code shift_factor} and {@code scaling_factor} are set from the posterior means of 256 pictures (mean and
 * 1/std), as FLUX's VAE config carries them. Writes a diffusers {@code vae/} folder atomically.
 */
public final class VaeTraining {
    private VaeTraining() {}

    /**
     * The demo's VAE: 16 latent channels, one resnet per block, mid-block attention, {@code downsample} = 4 ([32, 64, 64])
     * or 8 ([32, 64, 64, 64], FLUX's factor). 8× gives the transformer a quarter of the image tokens (a 64×64 picture is
     * 16 packed tokens), which is what lets the shapes demo train in about an hour on two CPU cores.
     */
    public static ObjectNode demoConfig(int downsample) {
        if (downsample != 4 && downsample != 8) throw new IllegalArgumentException("the demo VAE down-samples 4x or 8x, got " + downsample);
        int blocks = downsample == 4 ? 3 : 4;
        ObjectMapper m = new ObjectMapper();
        ObjectNode c = m.createObjectNode().put("_class_name", "AutoencoderKL").put("act_fn", "silu").put("in_channels", 3).put("out_channels", 3)
                .put("latent_channels", 16).put("layers_per_block", 1).put("mid_block_add_attention", true).put("norm_num_groups", 8)
                .put("scaling_factor", 1.0).put("shift_factor", 0.0).put("use_post_quant_conv", false).put("use_quant_conv", false).put("force_upcast", true);
        com.fasterxml.jackson.databind.node.ArrayNode channels = c.putArray("block_out_channels"), down = c.putArray("down_block_types"), up = c.putArray("up_block_types");
        for (int i = 0; i < blocks; i++) {
            channels.add(i == 0 ? 32 : 64);
            down.add("DownEncoderBlock2D");
            up.add("UpDecoderBlock2D");
        }
        return c;
    }

    /** Per-step report: step, loss, reconstruction MSE. */
    public record Step(int step, int steps, double loss, double mse) {}

    /**
     * Trains for {@code steps} steps of {@code batch} pictures and writes {@code dir} (config.json and
     * diffusion_pytorch_model.safetensors, the factors measured); returns the final reconstruction MSE on 64 held-out pictures.
     */
    public static double train(ObjectNode config, ShapesWorld world, int steps, int batch, double lr, double beta, long seed, Path dir,
                               Consumer<Step> progress) throws IOException {
        if (Files.exists(dir)) throw new IllegalArgumentException(dir + " exists (nothing was overwritten)");
        VaeConfig vc = VaeConfig.fromJson(config, "shapes VAE config");
        Map<String, long[]> shapes = ParameterShapes.of("shapes VAE parameters", sd -> AutoencoderKL.fromStateDict(sd, vc, DType.F32));
        Map<String, Tensor> params = new LinkedHashMap<>();
        GeneratorOptional gen = Native.keep(new GeneratorOptional(createCPUGenerator(seed)));
        try {
            try (PointerScope scope = new PointerScope(); NoGradGuard ng = new NoGradGuard()) {
                TensorOptions f32 = new TensorOptions(ScalarType.Float);
                for (Map.Entry<String, long[]> e : shapes.entrySet()) {
                    long[] s = e.getValue();
                    Tensor t;
                    if (s.length >= 2) {
                        long fanIn = 1;
                        for (int i = 1; i < s.length; i++) fanIn *= s[i];
                        t = randn(s, gen, f32).mul(new Scalar(1.0 / Math.sqrt(fanIn)));
                    } else if (e.getKey().endsWith(".weight")) {
                        t = org.bytedeco.pytorch.global.torch.ones(s, f32);
                    } else {
                        t = org.bytedeco.pytorch.global.torch.zeros(s, f32);
                    }
                    params.put(e.getKey(), Native.keep(t.detach().requires_grad_(true)));
                }
            }
            return loop(config, vc, params, params.values(), world, steps, batch, lr, beta, gen, dir, true, 0, progress);
        } finally {
            params.values().forEach(Native::release);
            Native.release(gen);
        }
    }

    /**
     * Fine-tunes the decoder of the VAE in {@code from} (a diffusers {@code vae/} folder) on fresh shapes-world pictures,
     * the encoder frozen: the latents it gives stay exactly what they were, so a transformer trained on them keeps working,
     * and only the pictures it decodes get sharper (Stable Diffusion's ft-MSE decoder did the same). Loss = MSE of
     * {@code decode(mean + std·ε)}; the config (with its shift and scaling factors) is copied unchanged. Writes {@code dir}
     * atomically; returns the held-out reconstruction MSE.
     */
    public static double fineTuneDecoder(Path from, ShapesWorld world, int steps, int batch, double lr, long seed, Path dir, Consumer<Step> progress) throws IOException {
        if (Files.exists(dir)) throw new IllegalArgumentException(dir + " exists (nothing was overwritten)");
        Path configFile = from.resolve("config.json"), weights = from.resolve("diffusion_pytorch_model.safetensors");
        if (!Files.isRegularFile(configFile) || !Files.isRegularFile(weights)) {
            throw new IllegalArgumentException(from + ": not a VAE folder (expected config.json and diffusion_pytorch_model.safetensors)");
        }
        ObjectNode config = (ObjectNode) new ObjectMapper().readTree(configFile.toFile());
        VaeConfig vc = VaeConfig.fromJson(config, configFile.toString());
        Map<String, Tensor> params = new LinkedHashMap<>();
        List<Tensor> trainable = new ArrayList<>();
        GeneratorOptional gen = Native.keep(new GeneratorOptional(createCPUGenerator(seed)));
        try {
            try (io.mmdit4j.io.SafetensorsFile f = io.mmdit4j.io.SafetensorsFile.open(weights, false); PointerScope scope = new PointerScope(); NoGradGuard ng = new NoGradGuard()) {
                for (String key : f.keys()) {
                    Tensor t = Native.keep(f.load(key).to(ScalarType.Float).clone().detach());
                    if (key.startsWith("decoder.")) {
                        t.requires_grad_(true);
                        trainable.add(t);
                    }
                    params.put(key, t);
                }
            }
            if (trainable.isEmpty()) throw new IllegalArgumentException(weights + ": no decoder.* weights to fine-tune");
            return loop(config, vc, params, trainable, world, steps, batch, lr, 0, gen, dir, false, FINE_TUNE_SCENES, progress);
        } finally {
            params.values().forEach(Native::release);
            Native.release(gen);
        }
    }

    /** Where the decoder fine-tune's pictures start: after any the VAE stage saw ({@code steps·batch} of them, far fewer). */
    static final long FINE_TUNE_SCENES = 50_000_000L;

    /** The training loop both entry points share; {@code measureFactors}: set shift and scaling from the posterior means; pictures from scene {@code firstScene} on. */
    private static double loop(ObjectNode config, VaeConfig vc, Map<String, Tensor> params, java.util.Collection<Tensor> trainable, ShapesWorld world, int steps,
                               int batch, double lr, double beta, GeneratorOptional gen, Path dir, boolean measureFactors, long firstScene, Consumer<Step> progress) throws IOException {
        LrSchedule schedule = new LrSchedule(lr, Math.min(100, steps / 10), steps, true);
        try (AutoencoderKL vae = AutoencoderKL.fromStateDict(RandomWeights.asStateDict("shapes VAE", params), vc, DType.F32)) {
            AdamWOptions o = new AdamWOptions(lr);
            o.weight_decay().put(0.0);
            try (AdamW opt = new AdamW(new TensorVector(trainable.toArray(new Tensor[0])), o)) {
                for (int s = 0; s < steps; s++) {
                    try (PointerScope scope = new PointerScope()) {
                        List<Scene> scenes = new ArrayList<>();
                        for (int j = 0; j < batch; j++) scenes.add(world.scene(firstScene + (long) s * batch + j));
                        Tensor x = ShapesData.images(scenes);
                        Tensor[] ml = vae.momentsWithGrad(x);
                        Tensor mean = io.mmdit4j.runtime.Scopes.adopt(ml[0]), logvar = io.mmdit4j.runtime.Scopes.adopt(ml[1]);
                        Tensor z = mean.add(exp(logvar.mul(new Scalar(0.5))).mul(randn(Tensors.shape(mean), gen, new TensorOptions(ScalarType.Float))));
                        Tensor rec = io.mmdit4j.runtime.Scopes.adopt(vae.decodeWithGrad(z));
                        Tensor mse = rec.sub(x).pow(new Scalar(2.0)).mean();
                        Tensor loss = mse; // + β·KL(posterior ‖ N(0, 1)); the decoder fine-tune (β = 0) has no KL to compute
                        if (beta != 0) {
                            Tensor kl = mean.pow(new Scalar(2.0)).add(exp(logvar)).sub(new Scalar(1.0)).sub(logvar).mean().mul(new Scalar(0.5));
                            loss = mse.add(kl.mul(new Scalar(beta)));
                        }
                        opt.zero_grad();
                        loss.backward();
                        GradNorms.clip(trainable, 1.0);
                        opt.param_groups().get(0).options().set_lr(schedule.at(s));
                        opt.step();
                        if (progress != null) progress.accept(new Step(s + 1, steps, loss.item_double(), mse.item_double()));
                    }
                }
            }
            double heldOut;
            double shift, scale;
            try (PointerScope scope = new PointerScope(); NoGradGuard ng = new NoGradGuard()) {
                List<Scene> scenes = new ArrayList<>();
                for (int j = 0; j < 256; j++) scenes.add(world.scene(10_000_000L + j));
                TensorVector means = new TensorVector();
                double se = 0;
                for (int k = 0; k < 256; k += 32) {
                    Tensor x = ShapesData.images(scenes.subList(k, k + 32));
                    Tensor[] ml = vae.momentsWithGrad(x);
                    Tensor mean = io.mmdit4j.runtime.Scopes.adopt(ml[0]);
                    io.mmdit4j.runtime.Scopes.adopt(ml[1]);
                    means.push_back(mean);
                    if (k < 64) se += io.mmdit4j.runtime.Scopes.adopt(vae.decodeWithGrad(mean)).sub(x).pow(new Scalar(2.0)).mean().item_double() / 2;
                }
                Tensor all = cat(means, 0);
                shift = all.mean().item_double();
                scale = 1.0 / all.std().item_double();
                heldOut = se;
            }
            ObjectNode out = measureFactors ? config.deepCopy().put("scaling_factor", scale).put("shift_factor", shift) : config.deepCopy();
            Path tmp = dir.resolveSibling("." + dir.getFileName() + ".tmp");
            Files2.deleteTree(tmp);
            Files.createDirectories(tmp);
            try (PointerScope scope = new PointerScope(); NoGradGuard ng = new NoGradGuard()) {
                Map<String, Tensor> m = new LinkedHashMap<>();
                params.forEach((k, v) -> m.put(k, v.detach().contiguous()));
                SafetensorsWriter.write(tmp.resolve("diffusion_pytorch_model.safetensors"), m, Map.of("format", "pt", "generated_by", measureFactors ? "mmdit4j train --recipe shapes-vae" : "mmdit4j train --recipe shapes-vae --finetune-decoder"));
            }
            Files.writeString(tmp.resolve("config.json"), new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsString(out));
            Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
            return heldOut;
        }
    }
}
