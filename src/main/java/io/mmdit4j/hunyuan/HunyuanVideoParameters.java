package io.mmdit4j.hunyuan;

import io.mmdit4j.io.ParameterShapes;
import io.mmdit4j.runtime.DType;

import java.util.Map;

/**
 * Every parameter of a HunyuanVideo transformer under its diffusers name, with its shape, in load order: what
 * {@link HunyuanVideoTransformer#fromStateDict} takes, recorded on meta tensors, so the list is spelled only by the loader.
 */
public final class HunyuanVideoParameters {
    private HunyuanVideoParameters() {}

    public static Map<String, long[]> shapes(HunyuanVideoConfig c) {
        return ParameterShapes.of("HunyuanVideo parameters " + c, sd -> HunyuanVideoTransformer.fromStateDict(sd, c, DType.F32));
    }

    /** Total number of parameters. */
    public static long count(HunyuanVideoConfig c) {
        return ParameterShapes.count(shapes(c));
    }
}
