package io.mmdit4j.pipeline;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.Arrays;

/**
 * Scale-wise sampling (SwD, Starodubcev et al.; the sampler of the SD3.5-Large-DMD2 recipe): after each step the clean
 * prediction {@code x0 = x − σ·v} is resized bicubically to the next scale and re-noised to the next sigma with fresh seeded
 * noise; the last step returns x0. A scale is the side of the square latent; the image is {@code 8·scale} pixels, so the
 * request's size is that of the last scale ({@link io.mmdit4j.sampling.ScaleWiseSampler}).
 *
 * @param scales    one latent side per step, or null: every step at the request's own latent size ("fixed": the paper's
 *                  {@code scales=[128]*6} at 1024², which also works for other and non-square sizes)
 * @param halfNoise round each step's noise to float16 as the reference code's {@code .half()} does (its fp16 CUDA recipe)
 */
public record ScaleWise(int[] scales, boolean halfNoise) implements GenerationOption {
    /** The largest latent side accepted (16384-pixel images). */
    public static final int MAX_SCALE = GenerationRequest.MAX_SIZE / 8;

    public ScaleWise {
        if (scales != null) {
            if (scales.length == 0) throw new IllegalArgumentException("scale-wise sampling: no scales given");
            scales = scales.clone();
            for (int s : scales) {
                if (s < 2 || s > MAX_SCALE || s % 2 != 0) {
                    throw new IllegalArgumentException("scales are latent sides: even numbers in 2.." + MAX_SCALE + " (16.." + GenerationRequest.MAX_SIZE
                            + " pixels in steps of 16), got " + s);
                }
            }
        }
    }

    /** Every step at the request's size. */
    public static ScaleWise fixed() {
        return new ScaleWise(null, false);
    }

    public static ScaleWise of(int... scales) {
        return new ScaleWise(scales, false);
    }

    public ScaleWise withHalfNoise(boolean half) {
        return new ScaleWise(scales, half);
    }

    public boolean isFixed() {
        return scales == null;
    }

    @Override
    public int[] scales() {
        return scales == null ? null : scales.clone();
    }

    /** The latent side of step {@code i}, or -1 when fixed. */
    public int scale(int i) {
        return scales == null ? -1 : scales[i];
    }

    /** Fails unless there is one scale per step and the size is the last scale's. */
    public void check(int steps, int width, int height) {
        if (scales == null) return;
        if (scales.length != steps) {
            throw new InvalidRequestException(scales.length + " scales for " + steps + " steps: give one latent side per step");
        }
        int last = 8 * scales[scales.length - 1];
        if (width != last || height != last) {
            throw new InvalidRequestException("scale-wise sampling ends at scale " + scales[scales.length - 1] + " (" + last + "x" + last
                    + " pixels), but the size is " + width + "x" + height + ": leave --width/--height open or give the last scale's");
        }
    }

    /** The last scale's image size. */
    @Override
    public int[] impliedSize() {
        if (scales == null) return null;
        int side = 8 * scales[scales.length - 1];
        return new int[] {side, side};
    }

    @Override
    public void write(ObjectNode s) {
        if (scales == null) s.put("scales", "fixed");
        else {
            ArrayNode a = s.putArray("scales");
            for (int v : scales) a.add(v);
        }
        if (halfNoise) s.put("scales_noise", "float16");
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof ScaleWise w && Arrays.equals(scales, w.scales) && halfNoise == w.halfNoise;
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(scales) * 31 + Boolean.hashCode(halfNoise);
    }

    @Override
    public String toString() {
        return "ScaleWise" + (scales == null ? "[fixed]" : Arrays.toString(scales)) + (halfNoise ? " fp16 noise" : "");
    }
}
