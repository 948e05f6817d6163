package io.mmdit4j.sampling;

/**
 * A generation produced NaN or infinity: all-NaN or overflowing weights, or inputs that overflow the compute dtype. A
 * clamp to [0, 1] and the 8-bit conversion would turn such values into a black image, so the run fails instead and says
 * where the values first appeared: in the initial latents, after a denoising step, or in the decode.
 */
public class NonFiniteException extends ArithmeticException {
    /** Where the values appeared. */
    public enum Stage { INITIAL_LATENTS, STEP, DECODE }

    private final Stage stage;
    private final int step;

    /** @param step the 0-based denoising step after which the latents were first non-finite ({@link Stage#STEP}), else -1 */
    public NonFiniteException(Stage stage, int step, String message) {
        super(message);
        this.stage = stage;
        this.step = step;
    }

    public Stage stage() {
        return stage;
    }

    /** The 0-based index of the first step whose result was non-finite, or -1 when the stage is not a step. */
    public int step() {
        return step;
    }
}
