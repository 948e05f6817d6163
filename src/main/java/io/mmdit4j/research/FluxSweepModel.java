package io.mmdit4j.research;

import io.mmdit4j.flux.FluxPipeline;
import io.mmdit4j.flux.FluxTextEncoders;
import io.mmdit4j.guidance.BlockConditioning;
import io.mmdit4j.guidance.ConditioningObserver;
import io.mmdit4j.guidance.GuidanceTerm;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.guidance.ModulationVisitor;
import io.mmdit4j.guidance.NormControl;
import io.mmdit4j.guidance.StepWindow;
import io.mmdit4j.runtime.Native;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.bytedeco.pytorch.global.torch.cat;

/**
 * FLUX behind {@link SweepModel}: prompts are encoded once each (T5 + CLIP, one row) and guidance deltas once per
 * (p+, p−); a batch concatenates the cached rows, seeds its noise per row, and gives every guided row its own
 * {@link GuidanceTerm} with a one-hot row weight, so rows of one batch carry different guidance.
 */
public final class FluxSweepModel implements SweepModel {
    private final FluxPipeline pipe;
    private final SweepSettings settings;
    private final Map<String, FluxTextEncoders.Embeddings> prompts = new HashMap<>();
    private final Map<List<String>, Tensor> deltas = new HashMap<>();
    private int encodes;

    /** Takes ownership of {@code pipe}. */
    public FluxSweepModel(FluxPipeline pipe, SweepSettings settings) {
        this.pipe = pipe;
        this.settings = settings;
    }

    public FluxPipeline pipeline() {
        return pipe;
    }

    /** Prompts and directions encoded so far (each distinct one once). */
    public int encodes() {
        return encodes;
    }

    @Override
    public String family() {
        return "flux";
    }

    @Override
    public int numBlocks() {
        return pipe.transformer().config().totalBlocks();
    }

    private FluxTextEncoders.Embeddings embeddings(String prompt) {
        return prompts.computeIfAbsent(prompt, p -> {
            encodes++;
            return pipe.textEncoders().encode(List.of(p), 1, settings.maxSequenceLength());
        });
    }

    private Tensor delta(SweepDirection d) {
        return deltas.computeIfAbsent(List.of(d.pos(), d.neg()), k -> {
            encodes++;
            return pipe.textEncoders().direction(pipe.transformer(), d.pos(), d.neg());
        });
    }

    @Override
    public Tensor generate(List<SweepCell> rows, NormControl norm, ConditioningObserver observer, Runnable onForward) {
        int b = rows.size();
        List<String> rowPrompts = new ArrayList<>();
        long[] seeds = new long[b];
        for (int i = 0; i < b; i++) {
            rowPrompts.add(rows.get(i).prompt());
            seeds[i] = rows.get(i).seed();
        }
        FluxPipeline.Request r = new FluxPipeline.Request(rowPrompts, 1, settings.width(), settings.height(), settings.steps(),
                settings.guidanceScale(), seeds, settings.maxSequenceLength(), List.of(), null, norm);
        ModulationGuidance.Builder g = ModulationGuidance.builder().normControl(norm);
        for (int i = 0; i < b; i++) {
            SweepCell c = rows.get(i);
            if (c.isReference()) continue;
            double[] onlyThisRow = new double[b];
            onlyThisRow[i] = 1;
            // the plan releases its deltas on close: give it a reference of its own to the cached one
            g.add(new GuidanceTerm(c.direction().label(), Native.keep(delta(c.direction())), c.w(), LayerSchedule.parse(c.layers()),
                    StepWindow.parse(c.stepWindow()), onlyThisRow));
        }
        List<FluxTextEncoders.Embeddings> encoded = new ArrayList<>();
        for (String p : rowPrompts) encoded.add(embeddings(p)); // outside the batch's scope: the cache keeps them
        try (ModulationGuidance plan = g.build(); PointerScope scope = new PointerScope()) {
            TensorVector embeds = new TensorVector(), pooled = new TensorVector();
            Tensor textIds = null;
            for (FluxTextEncoders.Embeddings e : encoded) {
                embeds.push_back(e.promptEmbeds());
                pooled.push_back(e.pooled());
                textIds = e.textIds();
            }
            // the batch's rows live in this scope; the cached encodings stay with the model
            FluxTextEncoders.Embeddings batch = new FluxTextEncoders.Embeddings(cat(embeds, 0), cat(pooled, 0), textIds);
            Tensor noise = pipe.noise(r);
            Tensor latents;
            try {
                latents = pipe.denoise(r, batch, noise, plan, (step, steps, sigma, nanos) -> {
                    if (onForward != null) onForward.run();
                    return true;
                }, observer, null);
            } finally {
                noise.close();
            }
            try {
                return pipe.decode(latents, settings.width(), settings.height());
            } finally {
                latents.close();
            }
        }
    }

    @Override
    public void modulations(BlockConditioning cond, ModulationVisitor visitor) {
        pipe.transformer().modulations(cond, visitor);
    }

    @Override
    public void close() {
        prompts.values().forEach(FluxTextEncoders.Embeddings::close);
        deltas.values().forEach(Native::release);
        pipe.close();
    }
}
