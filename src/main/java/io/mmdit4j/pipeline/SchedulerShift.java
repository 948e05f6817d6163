package io.mmdit4j.pipeline;

import com.fasterxml.jackson.databind.node.ObjectNode;

/** A static scheduler shift instead of the model's scheduler config (diffusers' {@code from_config(..., shift=)}). */
public record SchedulerShift(double shift) implements GenerationOption {
    public SchedulerShift {
        if (!Double.isFinite(shift) || shift <= 0 || shift > 1000) throw new IllegalArgumentException("scheduler shift must be in (0, 1000], got " + shift);
    }

    @Override
    public void write(ObjectNode s) {
        s.put("shift", shift);
    }
}
