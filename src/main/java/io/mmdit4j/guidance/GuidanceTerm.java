package io.mmdit4j.guidance;

import org.bytedeco.pytorch.Tensor;

import java.util.Arrays;

/**
 * One modulation-guidance direction applied with weight {@code w} on the layers of {@code layers}, during
 * the steps of {@code steps}, on the batch rows weighted by {@code rowWeights} (null: every row weight 1;
 * e.g. {@code {1, 0}} guides row 0 only, {@code {-1, 1}} is HiDream's CFG convention).
 *
 * @param delta {@code [1, D]} or {@code [B, D]}: {@code TextMLP(pooled+) - TextMLP(pooled-)}, computed once per request
 */
public record GuidanceTerm(String label, Tensor delta, double w, LayerSchedule layers, StepWindow steps, double[] rowWeights) {
    public GuidanceTerm {
        if (delta == null) throw new IllegalArgumentException("guidance term '" + label + "': delta is required");
        if (!Double.isFinite(w)) throw new IllegalArgumentException("guidance term '" + label + "': w must be finite, got " + w);
        if (layers == null) layers = LayerSchedule.all();
        if (steps == null) steps = StepWindow.all();
        if (rowWeights != null) {
            rowWeights = rowWeights.clone();
            for (double r : rowWeights) {
                if (!Double.isFinite(r)) throw new IllegalArgumentException("guidance term '" + label + "': row weights must be finite");
            }
        }
    }

    /** The coefficient {@code w · f(layer) · row weight} for each of {@code batch} rows at a step. */
    double[] coefficients(int layer, int numLayers, int step, int batch, double[] layerFactors) {
        double[] c = new double[batch];
        if (!steps.contains(step)) return c;
        double f = w * layerFactors[layer];
        for (int b = 0; b < batch; b++) c[b] = f * (rowWeights == null ? 1.0 : rowWeights[b]);
        return c;
    }

    /**
     * The coefficient {@code w · row weight} of each row for a final layer that always takes the guided vector (HiDream):
     * layer factor 1, within the step window; zero for a schedule that is zero everywhere.
     */
    double[] finalCoefficients(int step, int batch) {
        double[] c = new double[batch];
        if (!steps.contains(step) || layers.isZero()) return c;
        for (int b = 0; b < batch; b++) c[b] = w * (rowWeights == null ? 1.0 : rowWeights[b]);
        return c;
    }

    @Override
    public String toString() {
        return "GuidanceTerm[" + label + ", w=" + w + ", layers=" + layers + ", steps=" + steps
                + (rowWeights == null ? "" : ", rows=" + Arrays.toString(rowWeights)) + "]";
    }
}
