package io.mmdit4j.sd3;

import io.mmdit4j.io.ParameterShapes;
import io.mmdit4j.runtime.DType;

import java.util.Map;

/**
 * Every tensor of an SD3 transformer under its diffusers name (and under the original names), with its shape: what
 * {@link Sd3Transformer#fromStateDict} takes, recorded on meta tensors, so the list is spelled only by the loader.
 */
public final class Sd3Parameters {
    private Sd3Parameters() {}

    /** The positional table: a fixed buffer that the weight files store, not a learnable parameter. */
    private static final String POS_EMBED = "pos_embed.pos_embed";

    /** Diffusers names in load order; includes the positional table buffer {@code pos_embed.pos_embed}. */
    public static Map<String, long[]> shapes(Sd3Config c) {
        return ParameterShapes.of("SD3 parameters " + c, sd -> Sd3Transformer.fromStateDict(sd, c, DType.F32));
    }

    /** The same tensors under the original single-file names (fused qkv; without the {@code model.diffusion_model.} prefix). */
    public static Map<String, long[]> originalShapes(Sd3Config c) {
        return ParameterShapes.renamed(shapes(c), Sd3KeyMap::originalName);
    }

    /** Learnable parameters (the positional table is a fixed buffer and is not counted). */
    public static long count(Sd3Config c) {
        Map<String, long[]> shapes = shapes(c);
        shapes.remove(POS_EMBED);
        return ParameterShapes.count(shapes);
    }

    /** Elements of every stored tensor including the positional table (what the weight files hold). */
    public static long storedElements(Sd3Config c) {
        return ParameterShapes.count(shapes(c));
    }
}
