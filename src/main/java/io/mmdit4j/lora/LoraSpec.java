package io.mmdit4j.lora;

import java.nio.file.Path;

/** A LoRA file to merge into a model at a scale (1 = as trained). */
public record LoraSpec(Path file, double scale) {
    public LoraSpec {
        if (file == null) throw new IllegalArgumentException("a LoRA needs a file");
        if (!Double.isFinite(scale) || Math.abs(scale) > 1000) throw new IllegalArgumentException("LoRA " + file + ": scale must be a finite number in -1000..1000, got " + scale);
    }

    /** {@code file} or {@code file:scale}; the scale is what follows the last colon when it is a number. */
    public static LoraSpec parse(String spec) {
        int colon = spec.lastIndexOf(':');
        if (colon > 0) {
            String tail = spec.substring(colon + 1);
            try {
                double scale = Double.parseDouble(tail);
                if (!Double.isFinite(scale)) throw new IllegalArgumentException("--lora " + spec + ": scale must be a finite number");
                return new LoraSpec(Path.of(spec.substring(0, colon)), scale);
            } catch (NumberFormatException e) {
                // not a scale: a colon in the path
            }
        }
        return new LoraSpec(Path.of(spec), 1.0);
    }
}
