package io.mmdit4j.research;

import io.mmdit4j.guidance.BlockConditioning;
import io.mmdit4j.guidance.ConditioningObserver;
import io.mmdit4j.guidance.Direction;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.guidance.ModulationVisitor;
import io.mmdit4j.guidance.NormControl;
import io.mmdit4j.guidance.StepWindow;
import io.mmdit4j.pipeline.EmbeddedGuidance;
import io.mmdit4j.pipeline.GenerationRequest;
import io.mmdit4j.pipeline.GenerationResult;
import io.mmdit4j.pipeline.Pipeline;
import io.mmdit4j.runtime.Native;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * A sweep on any model behind the generation API: a batch is one request whose rows have their own prompt and seed,
 * and every guided row its own direction with a one-hot row weight, so rows of one batch carry different guidance
 * (the pipeline encodes each distinct direction once).
 */
public final class PipelineSweepModel implements SweepModel {
    private final Pipeline pipe;
    private final SweepSettings settings;

    /** Takes ownership of {@code pipe}. */
    public PipelineSweepModel(Pipeline pipe, SweepSettings settings) {
        this.pipe = pipe;
        this.settings = settings;
    }

    public Pipeline pipeline() {
        return pipe;
    }

    @Override
    public String family() {
        return pipe.family().name();
    }

    @Override
    public int numBlocks() {
        return pipe.numGuidedBlocks();
    }

    /** The request of one batch: row i is cell i. */
    public GenerationRequest request(List<SweepCell> rows, NormControl norm) {
        int b = rows.size();
        GenerationRequest.Builder r = GenerationRequest.builder().size(settings.width(), settings.height()).steps(settings.steps())
                .maxSequenceLength(settings.maxSequenceLength()).normControl(norm);
        long[] seeds = new long[b];
        List<String> prompts = new ArrayList<>();
        for (int i = 0; i < b; i++) {
            SweepCell c = rows.get(i);
            prompts.add(c.prompt());
            seeds[i] = c.seed();
            if (c.isReference()) continue;
            double[] onlyThisRow = new double[b];
            onlyThisRow[i] = 1;
            r.guide(new Direction(c.direction().label(), null, c.direction().pos(), c.direction().neg(), c.w(), LayerSchedule.parse(c.layers()),
                    StepWindow.parse(c.stepWindow()), null, onlyThisRow));           // CFG rows: the model's default (HiDream: cond-neg)
        }
        r.prompts(prompts).seeds(seeds);
        if (pipe.supportedOptions().contains(EmbeddedGuidance.class)) r.option(new EmbeddedGuidance(settings.guidanceScale()));
        return r.build();
    }

    @Override
    public Tensor generate(List<SweepCell> rows, NormControl norm, ConditioningObserver observer, Runnable onForward) {
        try (GenerationResult result = pipe.generate(pipe.resolve(request(rows, norm)), step -> {
            if (onForward != null) onForward.run();
            return true;
        }, observer)) {
            return Native.keep(result.images()); // the result releases its reference; the caller owns this one
        }
    }

    @Override
    public void modulations(BlockConditioning cond, ModulationVisitor visitor) {
        pipe.modulations(cond, visitor);
    }

    @Override
    public void close() {
        pipe.close();
    }
}
