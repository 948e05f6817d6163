package io.mmdit4j.guidance;

import io.mmdit4j.runtime.Native;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Turns a request's resolved {@link Direction}s into the {@link ModulationGuidance} plan of its transformer batch: one
 * delta per direction (computed once per request by the family), each image's weight, and, with classifier-free
 * guidance, the batch {@code [negative; positive]} of {@code 2·images} rows with each direction's {@link CfgRows} sign per
 * half. The same code serves every family; deltas made before a failure are released.
 */
public final class GuidancePlan {
    /**
     * The largest weight {@code |w·f(l)·row weight|} any block may receive: room for strong schedules (w 100 on a factor-3
     * item is 300) while keeping {@code temb + weight·delta} far from the compute dtype's overflow.
     */
    public static final double MAX_EFFECTIVE_W = 1000;

    private GuidancePlan() {}

    /** {@code TextMLP(pooled(pos)) − TextMLP(pooled(neg))} of a family, {@code [1, D]}, owned by the caller. */
    @FunctionalInterface
    public interface DeltaSource {
        Tensor delta(String pos, String neg);
    }

    /**
     * @param images    images of the request (the conditional half of a CFG batch)
     * @param cfg       whether the transformer batch is the CFG pair {@code [negative; positive]}
     * @param numBlocks blocks counted with the global guidance counter
     */
    public static ModulationGuidance build(List<Direction> directions, int images, boolean cfg, int numBlocks, NormControl norm,
                                           boolean guideFinalNorm, DeltaSource deltas) {
        check(directions, images, numBlocks);
        ModulationGuidance.Builder b = ModulationGuidance.builder().normControl(norm).guideFinalNorm(guideFinalNorm);
        List<Tensor> made = new ArrayList<>();
        try {
            for (Direction d : directions) {
                Tensor delta = deltas.delta(d.pos(), d.neg());
                made.add(delta);
                b.add(new GuidanceTerm(d.name(), delta, d.w(), d.layers(), d.steps(), transformerRowWeights(d, images, cfg)));
            }
        } catch (RuntimeException | Error e) {
            made.forEach(Native::release);
            throw e;
        }
        return b.build();
    }

    /** Rejects unresolved directions, row weights of the wrong length and explicit layers outside the model, before any work. */
    public static void check(List<Direction> directions, int images, int numBlocks) {
        for (Direction d : directions) {
            if (!d.isResolved()) throw new IllegalArgumentException("guidance '" + d.name() + "' is not resolved against a model: " + d);
            if (d.rowWeights() != null && d.rowWeights().length != images) {
                throw new IllegalArgumentException("guidance '" + d.name() + "': " + d.rowWeights().length + " row weights for " + images
                        + (images == 1 ? " image" : " images"));
            }
            double[] factors;
            try {
                factors = d.layers().factors(numBlocks);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("guidance '" + d.name() + "': " + e.getMessage(), e);
            }
            checkEffectiveWeight(d, factors);
        }
    }

    /** The largest weight a block receives from {@code d} must stay within {@link #MAX_EFFECTIVE_W}. */
    private static void checkEffectiveWeight(Direction d, double[] factors) {
        int block = 0;
        for (int l = 1; l < factors.length; l++) if (Math.abs(factors[l]) > Math.abs(factors[block])) block = l;
        double row = 1;
        if (d.rowWeights() != null) for (double r : d.rowWeights()) row = Math.max(row, Math.abs(r));
        double f = factors.length == 0 ? 0 : Math.abs(factors[block]);
        double effective = Math.abs(d.w()) * f * row;
        if (effective > MAX_EFFECTIVE_W) {
            throw new IllegalArgumentException("guidance '" + d.name() + "': block " + block + " would receive weight " + effective + " (w " + d.w()
                    + " x layer factor " + f + (row != 1 ? " x row weight " + row : "") + "); w x factor x row weight must stay within "
                    + (long) MAX_EFFECTIVE_W);
        }
    }

    /** Per transformer row: the image's weight times its CFG half's sign; null when every row weighs 1. */
    public static double[] transformerRowWeights(Direction d, int images, boolean cfg) {
        double[] perImage = d.rowWeights();
        if (!cfg) return perImage;
        if (d.rows() == CfgRows.BOTH && perImage == null) return null;
        double[] w = new double[2 * images];
        for (int i = 0; i < images; i++) {
            double r = perImage == null ? 1.0 : perImage[i];
            w[i] = d.rows().uncond * r;
            w[images + i] = d.rows().cond * r;
        }
        return w;
    }

    /**
     * Warnings for directions that guide nothing on this model and run: a schedule that selects no block of a model with
     * {@code numBlocks} blocks, or a step window past the last of {@code steps} steps (empty when none). Call after
     * {@link #check}.
     */
    public static List<String> warnings(List<Direction> directions, int numBlocks, int steps) {
        List<String> out = new ArrayList<>();
        for (Direction d : directions) {
            if (d.w() == 0 || d.layers().isZero()) continue;
            String u = d.layers().unreachable(numBlocks);
            if (u != null) out.add("guidance '" + d.name() + "': " + u);
            else if (Arrays.stream(d.layers().factors(numBlocks)).allMatch(f -> f == 0)) {
                out.add("guidance '" + d.name() + "': layer schedule \"" + d.layers() + "\" guides no block of this model's " + numBlocks);
            }
            if (d.steps().first() >= steps) {
                out.add("guidance '" + d.name() + "': step window " + d.steps() + " starts past the last of " + steps
                        + (steps == 1 ? " step" : " steps") + " (0.." + (steps - 1) + ") and guides no step");
            }
        }
        return out;
    }
}
