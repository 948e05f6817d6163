package io.mmdit4j.research;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.mmdit4j.guidance.NormControl;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * One image of a sweep: a prompt and seed, and either no guidance (a <b>reference</b> cell: {@code direction == null})
 * or one direction with its weight, layer schedule (canonical text), step window and norm control. A cell with
 * {@code w = 0} is the reference of its prompt and seed ({@link #canonical()}): it makes the same image.
 */
public record SweepCell(String prompt, long seed, SweepDirection direction, double w, String layers, String stepWindow, NormControl norm) {
    private static final ObjectMapper JSON = new ObjectMapper();

    public SweepCell {
        if (norm == null) norm = NormControl.NONE;
        if (direction == null) {
            w = 0;
            layers = "";
            stepWindow = "";
            norm = NormControl.NONE;
        }
    }

    public static SweepCell reference(String prompt, long seed) {
        return new SweepCell(prompt, seed, null, 0, null, null, null);
    }

    public boolean isReference() {
        return direction == null;
    }

    /** The cell that makes the same image: the reference for {@code w = 0}, else this. */
    public SweepCell canonical() {
        return !isReference() && w == 0 ? reference(prompt, seed) : this;
    }

    /** The unguided cell of the same prompt and seed. */
    public SweepCell referenceCell() {
        return reference(prompt, seed);
    }

    /**
     * The cell's identity: the first 16 hex digits of SHA-256 over the canonical JSON of everything that determines its image
     * (model, dtype, size, steps, guidance scale, T5 length, prompt, seed, and p+, p−, w, layers, steps and norm control when
     * guided). Labels do not count. Equal settings give equal ids across runs, so finished cells are recognised.
     */
    public String id(SweepSettings s) {
        SweepCell c = canonical();
        ObjectNode o = JSON.createObjectNode();
        o.put("model", s.model()).put("dtype", s.dtype()).put("width", s.width()).put("height", s.height()).put("steps", s.steps())
                .put("guidance_scale", s.guidanceScale()).put("max_sequence_length", s.maxSequenceLength()).put("prompt", c.prompt)
                .put("seed", c.seed);
        if (!c.isReference()) {
            o.putObject("guidance").put("pos", c.direction.pos()).put("neg", c.direction.neg()).put("w", c.w).put("layers", c.layers)
                    .put("steps", c.stepWindow).put("norm", c.norm.text());
        }
        try {
            byte[] h = MessageDigest.getInstance("SHA-256").digest(JSON.writeValueAsString(o).getBytes(StandardCharsets.UTF_8));
            return HexFormat.of().formatHex(h, 0, 8);
        } catch (NoSuchAlgorithmException | com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The value this cell has on a sweep axis, as a label. */
    public String axisLabel(String axis) {
        return switch (axis) {
            case "prompt" -> prompt;
            case "seed" -> Long.toString(seed);
            case "w" -> "w=" + fmt(w);
            case "layers" -> isReference() ? "-" : layers;
            case "steps" -> isReference() ? "-" : "steps " + stepWindow;
            case "direction" -> isReference() ? "none" : direction.label();
            case "norm" -> norm.text();
            default -> throw new IllegalArgumentException("unknown axis " + axis);
        };
    }

    static String fmt(double x) {
        return x == Math.rint(x) && Math.abs(x) < 1e15 ? Long.toString((long) x) : Double.toString(x);
    }
}
