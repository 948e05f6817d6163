package io.mmdit4j.pipeline;

import com.fasterxml.jackson.databind.node.ObjectNode;

/** The frame rate a video is written at (it does not change the frames generated). */
public record FrameRate(int fps) implements GenerationOption {
    public static final int MAX = 240;

    public FrameRate {
        if (fps < 1 || fps > MAX) throw new IllegalArgumentException("fps must be in 1.." + MAX + ", got " + fps);
    }

    @Override
    public void write(ObjectNode s) {
        s.put("fps", fps);
    }
}
