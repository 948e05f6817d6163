package io.mmdit4j.pipeline;

import com.fasterxml.jackson.databind.node.ObjectNode;

/** Embedded (distilled) guidance: the scale a guidance-distilled model (FLUX.1-dev, HunyuanVideo) receives as an input. */
public record EmbeddedGuidance(double scale) implements GenerationOption {
    public EmbeddedGuidance {
        if (!Double.isFinite(scale) || scale < 0 || scale > 100) throw new IllegalArgumentException("embedded guidance scale must be in 0..100, got " + scale);
    }

    @Override
    public void write(ObjectNode s) {
        s.put("guidance_scale", scale);
    }
}
