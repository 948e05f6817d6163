package io.mmdit4j.pipeline;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;

import java.util.Collections;
import java.util.List;

/**
 * Guidance against negative prompts on the transformer batch {@code [negative; positive]}, {@code v = v_neg + scale·(v_pos −
 * v_neg)}, on when {@code scale > 1}: classifier-free guidance ({@link ClassifierFreeGuidance}: SD3, COSMOS) and FLUX's true
 * CFG ({@link TrueCfg}). Negative prompts: none ({@code ""}, diffusers' default), one for every prompt, or one per prompt;
 * an image alone or a chunk of images keeps its prompts' ({@link #withNegatives}).
 */
public interface NegativePrompts extends GenerationOption {
    double scale();

    List<String> negativePrompts();

    /** The same guidance with other negative prompts. */
    NegativePrompts withNegatives(List<String> negatives);

    /** diffusers' {@code do_classifier_free_guidance} / {@code do_true_cfg}: a scale above 1. */
    default boolean active() {
        return scale() > 1;
    }

    /**
     * The guided prediction of a batch {@code [negative; positive]} ({@code 2·B} rows): {@code neg + scale·(pos − neg)},
     * {@code [B, ...]}, in this op order (diffusers' CFG and true CFG). A temporary of the caller's scope.
     */
    static Tensor combine(Tensor rows, Scalar scale) {
        long b = rows.size(0) / 2;
        Tensor neg = rows.narrow(0, 0, b), pos = rows.narrow(0, b, b);
        return neg.add(pos.sub(neg).mul(scale));
    }

    /** {@link #combine(Tensor, Scalar)} with this guidance's scale. */
    default Tensor combine(Tensor rows) {
        try (Scalar s = new Scalar(scale())) {
            return combine(rows, s);
        }
    }

    /** The negative prompt of each of {@code prompts} prompts. */
    default List<String> negatives(int prompts) {
        List<String> given = negativePrompts();
        if (given.isEmpty()) return Collections.nCopies(prompts, "");
        if (given.size() == 1) return Collections.nCopies(prompts, given.get(0));
        if (given.size() != prompts) {
            throw new InvalidRequestException(given.size() + " negative prompts for " + prompts + " prompts: give one, or one per prompt");
        }
        return given;
    }

    /** Writes {@code key: scale} and the negative prompts ({@code negative_prompt}: a string, or a list of one per prompt). */
    static void write(ObjectNode s, String key, double scale, List<String> negatives) {
        s.put(key, scale);
        if (negatives.size() == 1) s.put("negative_prompt", negatives.get(0));
        else if (negatives.size() > 1) {
            ArrayNode a = s.putArray("negative_prompt");
            negatives.forEach(a::add);
        }
    }

    /** A scale in 0..100 (the limit every guidance scale has). */
    static void checkScale(String what, double scale) {
        if (!Double.isFinite(scale) || scale < 0 || scale > 100) throw new IllegalArgumentException(what + " scale must be in 0..100, got " + scale);
    }
}
