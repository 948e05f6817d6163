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

    /**
     * A family's guidance delta {@code mlp(pooled(pos)) − mlp(pooled(neg))} from its pooled text vectors (one row each) and its
     * pooled-text MLP's {@code direction}, the pooled vectors freed at once; owned by the caller.
     */
    public static Tensor direction(java.util.function.Function<List<String>, Tensor> pooled, java.util.function.BinaryOperator<Tensor> direction,
                                   String pos, String neg) {
        try (org.bytedeco.javacpp.PointerScope scope = new org.bytedeco.javacpp.PointerScope()) {
            Tensor p = pooled.apply(List.of(pos));
            Tensor n = pooled.apply(List.of(neg));
            Tensor d = direction.apply(p, n);
            p.close();
            n.close();
            return d;
        }
    }

    /** Rejects unresolved directions, row weights of the wrong length and explicit layers outside the model, before any work. */
    public static void check(List<Direction> directions, int images, int numBlocks) {
        for (Direction d : directions) {
            if (!d.isResolved()) throw new IllegalArgumentException("guidance '" + d.name() + "' is not resolved against a model: " + d);
            if (d.rowWeights() != null && d.rowWeights().length != images) {
                throw new IllegalArgumentException("guidance '" + d.name() + "': " + d.rowWeights().length + " row weights for " + images
                        + (images == 1 ? " image" : " images"));
            }
            try {
                d.layers().factors(numBlocks);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("guidance '" + d.name() + "': " + e.getMessage(), e);
            }
        }
    }

    /**
     * Per transformer row: the image's weight times its CFG half's sign; null when every row weighs 1. With
     * {@link CfgRows#REFERENCE_PAIR} the sign follows the transformer batch instead: {@code −, +} on a batch of exactly 2
     * rows (with or without CFG), {@code +} on every row of any other.
     */
    public static double[] transformerRowWeights(Direction d, int images, boolean cfg) {
        double[] perImage = d.rowWeights();
        if (d.rows() == CfgRows.REFERENCE_PAIR) {
            int rows = cfg ? 2 * images : images;
            double[] w = new double[rows];
            for (int r = 0; r < rows; r++) w[r] = perImage == null ? 1.0 : perImage[r % images];
            if (rows == 2) w[0] = -w[0];
            else if (perImage == null) return null;
            return w;
        }
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
     * The direction that guides image {@code image} of a request of {@code images} images made alone as it was guided in
     * the request (its settings record): its row weight folded into {@code w}, and the batch-dependent sign of
     * {@link CfgRows#REFERENCE_PAIR} made explicit; null when it did not guide that image.
     */
    public static Direction alone(Direction d, int image, int images, boolean cfg) {
        double rw = d.rowWeights() == null ? 1.0 : d.rowWeights()[image];
        CfgRows rows = d.rows();
        if (rows == CfgRows.REFERENCE_PAIR && d.w() != null) {
            int batch = cfg ? 2 * images : images;
            if (!cfg && batch == 2 && image == 0) rw = -rw;           // alone (batch 1) the rule gives +: fold the −
            else if (batch != 2) rows = CfgRows.BOTH;                 // + on every row, also on a CFG pair made alone
        }
        if (rw == 0) return null;
        if (rw == 1 && rows == d.rows() && d.rowWeights() == null) return d;
        return new Direction(d.label(), d.preset(), d.pos(), d.neg(), d.w() == null ? null : d.w() * rw, d.layers(), d.steps(), rows, null);
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
