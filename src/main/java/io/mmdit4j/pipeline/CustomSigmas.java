package io.mmdit4j.pipeline;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.Arrays;

/**
 * An explicit sigma list (with or without the terminal 0), as distilled recipes give it (SD3.5-Large DMD2:
 * {@code 1.0, 0.9454, 0.8959, 0.7904, 0.7371, 0.6022, 0}). By default the list reaches the model as given;
 * {@code shifted} passes it through the scheduler's shift as diffusers' {@code set_timesteps(sigmas=)} does.
 */
public record CustomSigmas(double[] sigmas, boolean shifted) implements GenerationOption {
    public CustomSigmas {
        if (sigmas == null || sigmas.length == 0) throw new IllegalArgumentException("explicit sigmas: the list is empty");
        sigmas = sigmas.clone();
        for (double s : sigmas) {
            if (!Double.isFinite(s) || s < 0 || s > 1) throw new IllegalArgumentException("explicit sigmas must be in [0, 1], got " + s);
        }
        if (steps(sigmas) < 1) throw new IllegalArgumentException("explicit sigmas describe no step: " + Arrays.toString(sigmas));
    }

    /** A list used as given. */
    public static CustomSigmas of(double... sigmas) {
        return new CustomSigmas(sigmas, false);
    }

    /** The number of steps the list describes (its length without a terminal 0). */
    public int steps() {
        return steps(sigmas);
    }

    private static int steps(double[] s) {
        return s[s.length - 1] == 0.0 ? s.length - 1 : s.length;
    }

    @Override
    public double[] sigmas() {
        return sigmas.clone();
    }

    @Override
    public void write(ObjectNode s) {
        ArrayNode a = s.putArray("sigmas");
        for (double v : sigmas) a.add(v);
        if (shifted) s.put("sigmas_shifted", true);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof CustomSigmas c && Arrays.equals(sigmas, c.sigmas) && shifted == c.shifted;
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(sigmas) * 31 + Boolean.hashCode(shifted);
    }

    @Override
    public String toString() {
        return "CustomSigmas" + Arrays.toString(sigmas) + (shifted ? " shifted" : "");
    }
}
