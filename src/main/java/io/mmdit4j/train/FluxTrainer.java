package io.mmdit4j.train;

import io.mmdit4j.flux.FluxInputs;
import io.mmdit4j.flux.FluxLatents;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Scopes;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.AdamW;
import org.bytedeco.pytorch.AdamWOptions;
import org.bytedeco.pytorch.InputArchive;
import org.bytedeco.pytorch.OutputArchive;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * One rectified-flow training step of a {@link FluxTrainable}, split into the statements of diffusers'
 * {@code train_dreambooth_flux.py} / {@code train_dreambooth_lora_flux.py}: {@link #lossAndBackward} (noisy input, packed
 * forward with autograd, unpacked prediction, weighted MSE against {@code noise − x0}, backward), {@link #clip} (global
 * grad norm, optional clipping) and {@link #step} (libtorch's AdamW, one parameter group over the trainable tensors,
 * decoupled weight decay on all of them, then gradients cleared). Owns the optimizer, not the model.
 */
public final class FluxTrainer implements AutoCloseable {
    /** AdamW hyper-parameters (torch's defaults for betas and eps). */
    public record Optim(double lr, double weightDecay, double beta1, double beta2, double eps) {
        public Optim {
            if (!(lr > 0) || weightDecay < 0 || !(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1) || !(eps > 0)) {
                throw new IllegalArgumentException("AdamW needs lr > 0, weight decay >= 0, betas in [0, 1) and eps > 0");
            }
        }

        public static Optim of(double lr, double weightDecay) {
            return new Optim(lr, weightDecay, 0.9, 0.999, 1e-8);
        }
    }

    /**
     * A batch: clean latents {@code x0} [B, C, h, w] (normalised as the VAE's scaling gives them), T5 states [B, T, d],
     * pooled CLIP [B, P], text ids [T, 3], image ids [(h/2)(w/2), 3], and for dev models the guidance [B] (else null).
     */
    public record Batch(Tensor x0, Tensor promptEmbeds, Tensor pooled, Tensor txtIds, Tensor imgIds, Tensor guidance) {}

    private final FluxTrainable model;
    private final List<Tensor> params;
    private final AdamW optimizer;
    private boolean bf16;

    public FluxTrainer(FluxTrainable model, Optim o) {
        this.model = model;
        this.params = new ArrayList<>(model.trainable().values());
        if (params.isEmpty()) throw new IllegalArgumentException("nothing to train: no tensor requires grad");
        AdamWOptions options = new AdamWOptions(o.lr());
        options.weight_decay().put(o.weightDecay());
        options.eps().put(o.eps());
        setBetas(options, o.beta1(), o.beta2());
        this.optimizer = new AdamW(new TensorVector(params.toArray(new Tensor[0])), options);
    }

    /**
     * Writes the betas into the options' {@code std::tuple<double, double>}, whose element order in memory is the C++ library's
     * (libstdc++ stores a tuple's elements last first): found from the defaults (0.9, 0.999) of fresh options.
     */
    static void setBetas(AdamWOptions options, double beta1, double beta2) {
        double first, second;
        try (AdamWOptions defaults = new AdamWOptions(1e-3)) {
            first = defaults.betas().get(0);
            second = defaults.betas().get(1);
        }
        boolean reversed;
        if (first == 0.9 && second == 0.999) reversed = false;
        else if (first == 0.999 && second == 0.9) reversed = true;
        else throw new IllegalStateException("libtorch's AdamW defaults are not betas (0.9, 0.999): " + first + ", " + second);
        options.betas().put(reversed ? 1 : 0, beta1).put(reversed ? 0 : 1, beta2);
    }

    /** Runs the forward and backward under bf16 autocast (parameters, optimizer and loss stay fp32). */
    public FluxTrainer autocastBf16(boolean on) {
        this.bf16 = on;
        return this;
    }

    public FluxTrainable model() {
        return model;
    }

    /**
     * Forward and backward of one batch with the given noise [B, C, h, w] and σ [B] (the model gets {@code timestep = σ},
     * which equals the scripts' {@code timesteps/1000} bit for bit): clears old gradients, accumulates new ones into the
     * trainable tensors and returns the loss. {@code predOut}, when not null, receives the unpacked prediction (owned).
     */
    public double lossAndBackward(Batch b, Tensor noise, Tensor sigmas, FlowMatching.Scheme scheme, Tensor[] predOut) {
        optimizer.zero_grad();
        try (PointerScope scope = new PointerScope()) {
            Tensor x0 = b.x0();
            long h = x0.size(2), w = x0.size(3);
            Tensor noisy = FlowMatching.noisy(x0, noise, sigmas);
            FluxInputs in = new FluxInputs(FluxLatents.pack(noisy), b.promptEmbeds(), b.pooled(), sigmas, b.guidance(), b.imgIds(), b.txtIds());
            Tensor pred;
            try (Autocast ac = new Autocast(bf16)) {
                pred = FluxLatents.unpack(Scopes.adopt(model.model().forwardWithGrad(in, ModulationGuidance.none(), 0)), h, w);
            }
            Tensor loss = FlowMatching.loss(pred, noise.sub(x0), FlowMatching.weighting(scheme, sigmas)); // fp32
            double value = loss.item_double();
            if (!Double.isFinite(value)) throw new ArithmeticException("training loss is " + value + " (diverged: lower the learning rate)");
            loss.backward();
            if (predOut != null) predOut[0] = Native.keep(pred.detach().clone());
            return value;
        }
    }

    /** The loss of a batch with the given noise and σ, without gradients (held-still evaluation). */
    public double loss(Batch b, Tensor noise, Tensor sigmas, FlowMatching.Scheme scheme) {
        try (PointerScope scope = new PointerScope(); org.bytedeco.pytorch.NoGradGuard ng = new org.bytedeco.pytorch.NoGradGuard()) {
            Tensor x0 = b.x0();
            FluxInputs in = new FluxInputs(FluxLatents.pack(FlowMatching.noisy(x0, noise, sigmas)), b.promptEmbeds(), b.pooled(), sigmas, b.guidance(),
                    b.imgIds(), b.txtIds());
            Tensor pred = FluxLatents.unpack(Scopes.adopt(model.model().forwardWithGrad(in, ModulationGuidance.none(), 0)), x0.size(2), x0.size(3));
            return FlowMatching.loss(pred, noise.sub(x0), FlowMatching.weighting(scheme, sigmas)).item_double();
        }
    }

    /** The gradient norms (trainable order) and, with {@code maxNorm > 0}, clipping. */
    public GradNorms.Result clip(double maxNorm) {
        return GradNorms.clip(params, maxNorm);
    }

    /** The norms over {@code tensors} in that order (e.g. a reference's parameter order) and clipping of all of them. */
    public GradNorms.Result clip(List<Tensor> inOrder, double maxNorm) {
        return GradNorms.clip(inOrder, maxNorm);
    }

    /** One AdamW update at learning rate {@code lr}, then the gradients are cleared. */
    public void step(double lr) {
        optimizer.param_groups().get(0).options().set_lr(lr);
        optimizer.step();
        optimizer.zero_grad();
    }

    /** The optimizer state (moments and step counts) to {@code file}, libtorch's archive format. */
    public void saveOptimizer(Path file) {
        try (OutputArchive a = new OutputArchive()) {
            optimizer.save(a);
            a.save_to(file.toString());
        }
    }

    public void loadOptimizer(Path file) {
        if (!Files.isRegularFile(file)) throw new ModelFormatException(file + ": missing (the optimizer state)");
        try (InputArchive a = new InputArchive()) {
            a.load_from(file.toString());
            optimizer.load(a);
        } catch (RuntimeException e) {
            throw new ModelFormatException(file + ": not a readable optimizer state: " + firstLine(e.getMessage()), e);
        }
    }

    static String firstLine(String s) {
        if (s == null) return "";
        int i = s.indexOf('\n');
        return i < 0 ? s : s.substring(0, i);
    }

    @Override
    public void close() {
        optimizer.close();
    }
}
