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
     * The direction that guides images {@code from..to-1} of a request of {@code images} images made as a request of their
     * own (a chunk, {@code GenerationSettings.chunk}) as they were guided in the whole request: their row weights, and the
     * batch-dependent sign of {@link CfgRows#REFERENCE_PAIR} made explicit. On a whole batch of 2 rows without CFG (two
     * images) the rule gave image 0 {@code −}, which becomes its row weight's sign (a part has one image, which the rule gives
     * {@code +}); on any other whole batch it gave {@code +} everywhere, which is {@link CfgRows#BOTH} (a part's batch may
     * be 2 rows, where the rule would give {@code −, +}).
     */
    public static Direction forImages(Direction d, int from, int to, int images, boolean cfg) {
        if (from < 0 || to > images || from >= to) throw new IndexOutOfBoundsException("images " + from + ".." + to + " of " + images);
        double[] rw = d.rowWeights() == null ? null : Arrays.copyOfRange(d.rowWeights(), from, to);
        CfgRows rows = d.rows();
        if (rows == CfgRows.REFERENCE_PAIR && d.w() != null) {
            int batch = cfg ? 2 * images : images;
            if (batch != 2) {
                rows = CfgRows.BOTH;
            } else if (!cfg && from == 0 && to < images) {
                if (rw == null) {
                    rw = new double[to - from];
                    Arrays.fill(rw, 1.0);
                }
                rw[0] = -rw[0];
            }
        }
        if (rows == d.rows() && rw == null) return d;
        return new Direction(d.label(), d.preset(), d.pos(), d.neg(), d.w(), d.layers(), d.steps(), rows, rw);
    }

    /**
     * The direction that guides image {@code image} of a request of {@code images} images made alone as it was guided in
     * the request (its settings record): {@link #forImages} of that image with its row weight folded into {@code w}; null
     * when it did not guide that image.
     */
    public static Direction alone(Direction d, int image, int images, boolean cfg) {
        Direction p = forImages(d, image, image + 1, images, cfg);
        double rw = p.rowWeights() == null ? 1.0 : p.rowWeights()[0];
        if (rw == 0) return null;
        if (rw == 1 && p.rows() == d.rows() && d.rowWeights() == null) return d;
        return new Direction(d.label(), d.preset(), d.pos(), d.neg(), d.w() == null ? null : d.w() * rw, d.layers(), d.steps(), p.rows(), null);
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
