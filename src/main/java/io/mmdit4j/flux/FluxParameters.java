package io.mmdit4j.flux;

import io.mmdit4j.io.ParameterShapes;
import io.mmdit4j.runtime.DType;

import java.util.Map;

/**
 * Every parameter of a FLUX transformer under its diffusers name, with its shape, in load order: what
 * {@link FluxTransformer#fromStateDict} takes, recorded on meta tensors, so the list is spelled only by the loader.
 */
public final class FluxParameters {
    private FluxParameters() {}

    public static Map<String, long[]> shapes(FluxConfig c) {
        return ParameterShapes.of("FLUX parameters " + c, sd -> FluxTransformer.fromStateDict(sd, c, DType.F32));
    }

    /** The same parameters under original Black Forest Labs names (fused qkv and linear1; no ComfyUI prefix). */
    public static Map<String, long[]> bflShapes(FluxConfig c) {
        return ParameterShapes.renamed(shapes(c), FluxKeyMap::bflName);
    }

    /** Total number of parameters. */
    public static long count(FluxConfig c) {
        return ParameterShapes.count(shapes(c));
    }
}
