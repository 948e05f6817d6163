package io.mmdit4j.pipeline;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.Collections;
import java.util.List;

/**
 * Classifier-free guidance: the transformer batch {@code [negative; positive]} and {@code v_u + scale·(v_c − v_u)}.
 * It is on when {@code scale > 1} (diffusers' {@code do_classifier_free_guidance}); off, the negative prompts are unused.
 *
 * @param negativePrompts one for every prompt, or one per prompt; empty means {@code ""} (diffusers' default)
 */
public record ClassifierFreeGuidance(double scale, List<String> negativePrompts) implements GenerationOption {
    public ClassifierFreeGuidance {
        if (!Double.isFinite(scale) || scale < 0 || scale > 100) {
            throw new IllegalArgumentException("classifier-free guidance scale must be in 0..100, got " + scale);
        }
        negativePrompts = negativePrompts == null ? List.of() : List.copyOf(negativePrompts);
    }

    public ClassifierFreeGuidance(double scale) {
        this(scale, List.of());
    }

    /** diffusers' {@code do_classifier_free_guidance}: {@code guidance_scale > 1}. */
    public boolean active() {
        return scale > 1;
    }

    /** The negative prompt of each of {@code prompts} prompts. */
    public List<String> negatives(int prompts) {
        if (negativePrompts.isEmpty()) return Collections.nCopies(prompts, "");
        if (negativePrompts.size() == 1) return Collections.nCopies(prompts, negativePrompts.get(0));
        if (negativePrompts.size() != prompts) {
            throw new InvalidRequestException(negativePrompts.size() + " negative prompts for " + prompts + " prompts: give one, or one per prompt");
        }
        return negativePrompts;
    }

    @Override
    public void write(ObjectNode s) {
        s.put("cfg_scale", scale);
        if (negativePrompts.size() == 1) s.put("negative_prompt", negativePrompts.get(0));
        else if (negativePrompts.size() > 1) {
            ArrayNode a = s.putArray("negative_prompt");
            negativePrompts.forEach(a::add);
        }
    }
}
