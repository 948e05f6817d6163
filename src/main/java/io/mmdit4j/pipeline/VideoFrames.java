package io.mmdit4j.pipeline;

import com.fasterxml.jackson.databind.node.ObjectNode;

/** A video's frame count (HunyuanVideo: {@code 4k + 1}). */
public record VideoFrames(int frames) implements GenerationOption {
    public static final int MAX = 1025;

    public VideoFrames {
        if (frames < 1 || frames > MAX) throw new IllegalArgumentException("frames must be in 1.." + MAX + ", got " + frames);
    }

    @Override
    public void write(ObjectNode s) {
        s.put("frames", frames);
    }
}
