package io.mmdit4j.pipeline;

import com.fasterxml.jackson.databind.node.ObjectNode;
import org.bytedeco.pytorch.Tensor;

import java.util.List;

/**
 * The random draws of a generation given instead of drawn from each image's seeded generator, in the order the pipeline
 * draws them ({@link RandomDraws}): e.g. a reference run's recorded posterior sample and noise (img2img), or its initial
 * latents and per-step noise (scale-wise sampling), where it drew one tensor for the whole batch from one generator. For
 * tests and cross-checks: borrowed (the caller keeps the tensors alive), not recorded in the settings, and a request with
 * given draws runs as one batch.
 */
public record GivenDraws(List<Tensor> draws) implements GenerationOption {
    public GivenDraws {
        draws = List.copyOf(draws);
        if (draws.isEmpty()) throw new IllegalArgumentException("given draws: none");
    }

    /** Not recorded: a replay draws from the seeds. */
    @Override
    public void write(ObjectNode s) {}
}
