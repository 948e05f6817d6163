package io.mmdit4j.pipeline;

import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * HiDream's area-preserving resize ({@code HiDreamImagePipeline.__call__}): every requested size is scaled to the area
 * of a {@code pixels × pixels} image, keeping its aspect ratio, then rounded down to multiples of 16
 * ({@code W' = int(W·s // 16 · 16)}, {@code s = sqrt(pixels² / (W·H))}); {@code pixels} is the pipeline's
 * {@code default_sample_size · 8} (1024 for HiDream-I1). The image has the resized size.
 */
public record SampleSize(int pixels) implements GenerationOption {
    public static final int MAX = GenerationRequest.MAX_SIZE;

    public SampleSize {
        if (pixels < 16 || pixels > MAX) throw new IllegalArgumentException("sample size must be in 16.." + MAX + " pixels, got " + pixels);
    }

    /** The resized {@code {width, height}} of a request, in Python's float arithmetic. */
    public int[] resize(int width, int height) {
        double scale = Math.sqrt((double) pixels * pixels / ((double) width * height));
        return new int[] {(int) (Math.floor(width * scale / 16) * 16), (int) (Math.floor(height * scale / 16) * 16)};
    }

    @Override
    public void write(ObjectNode s) {
        s.put("sample_size", pixels);
    }
}
