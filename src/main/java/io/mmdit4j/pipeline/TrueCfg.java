package io.mmdit4j.pipeline;

import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.List;

/**
 * FLUX's true classifier-free guidance, diffusers' {@code FluxPipeline(true_cfg_scale=..., negative_prompt=...)}: the
 * guidance-distilled transformer also runs on the negative prompt and {@code v = v_neg + scale·(v_pos − v_neg)}; on when
 * {@code scale > 1}. FLUX.1-dev keeps its embedded guidance on both halves. It is its own option (not
 * {@link ClassifierFreeGuidance}'s {@code --cfg}) as in diffusers, where FLUX's {@code guidance_scale} is the embedded one.
 *
 * @param negativePrompts one for every prompt, or one per prompt; empty means {@code ""} (diffusers needs one given)
 */
public record TrueCfg(double scale, List<String> negativePrompts) implements NegativePrompts {
    public TrueCfg {
        NegativePrompts.checkScale("true CFG", scale);
        negativePrompts = negativePrompts == null ? List.of() : List.copyOf(negativePrompts);
    }

    @Override
    public TrueCfg withNegatives(List<String> negatives) {
        return new TrueCfg(scale, negatives);
    }

    @Override
    public void write(ObjectNode s) {
        NegativePrompts.write(s, "true_cfg_scale", scale, negativePrompts);
    }
}
