package io.mmdit4j.pipeline;

import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.List;

/**
 * Classifier-free guidance: the transformer batch {@code [negative; positive]} and {@code v_u + scale·(v_c − v_u)}.
 * It is on when {@code scale > 1} (diffusers' {@code do_classifier_free_guidance}); off, the negative prompts are unused.
 *
 * @param negativePrompts one for every prompt, or one per prompt; empty means {@code ""} (diffusers' default)
 */
public record ClassifierFreeGuidance(double scale, List<String> negativePrompts) implements NegativePrompts {
    public ClassifierFreeGuidance {
        NegativePrompts.checkScale("classifier-free guidance", scale);
        negativePrompts = negativePrompts == null ? List.of() : List.copyOf(negativePrompts);
    }

    public ClassifierFreeGuidance(double scale) {
        this(scale, List.of());
    }

    @Override
    public ClassifierFreeGuidance withNegatives(List<String> negatives) {
        return new ClassifierFreeGuidance(scale, negatives);
    }

    @Override
    public void write(ObjectNode s) {
        NegativePrompts.write(s, "cfg_scale", scale, negativePrompts);
    }
}
