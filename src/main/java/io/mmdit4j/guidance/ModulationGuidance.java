package io.mmdit4j.guidance;

import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.bytedeco.pytorch.global.torch.silu;

/**
 * Modulation guidance for one request: the plan that turns the plain conditioning vector {@code temb}
 * into a per-block vector {@code temb + Σ_terms w·f_term(block)·rowWeight·delta_term}, per denoising step.
 *
 * <p>The final norm keeps the plain {@code temb} (FLUX, SD3.5, HunyuanVideo) unless
 * {@link Builder#guideFinalNorm} is set (HiDream): then it gets {@code temb + Σ_terms w·rowWeight·delta} at every step of
 * each term's step window, whatever blocks the term's layer schedule selects (the reference's final layer always gets
 * {@code temb_guided}, also when {@code start_layer} is past the last block); a term whose schedule is zero everywhere
 * ({@code none}) leaves it plain.
 * A guidance whose coefficients are all zero for a block leaves that block's input the very same tensor
 * as {@code temb}, so {@code w = 0} is bit-identical to no guidance.
 *
 * <p>The plan owns the delta tensors given to its builder and releases them on {@link #close()}.
 */
public final class ModulationGuidance implements AutoCloseable {
    private static final ModulationGuidance NONE = new ModulationGuidance(List.of(), false, NormControl.NONE);

    private final List<GuidanceTerm> terms;
    private final boolean guideFinalNorm;
    private final NormControl normControl;
    private final List<Tensor> ownedDeltas; // released on close: the builder's deltas, or a row view's narrowed deltas
    private final Map<String, Tensor> offsets = new HashMap<>(); // per distinct coefficient set, see offset()
    private final Map<Integer, List<double[]>> factorsByBlocks = new java.util.concurrent.ConcurrentHashMap<>(); // per model depth

    private ModulationGuidance(List<GuidanceTerm> terms, boolean guideFinalNorm, NormControl normControl) {
        this(terms, guideFinalNorm, normControl, terms.stream().map(GuidanceTerm::delta).toList());
    }

    private ModulationGuidance(List<GuidanceTerm> terms, boolean guideFinalNorm, NormControl normControl, List<Tensor> ownedDeltas) {
        this.terms = terms;
        this.guideFinalNorm = guideFinalNorm;
        this.normControl = normControl;
        this.ownedDeltas = ownedDeltas;
    }

    /**
     * The plan of the batch rows {@code [from, from + count)} of this plan's batch, for families that run parts of a batch
     * as separate forwards (e.g. the two classifier-free-guidance halves, one pass each): every term keeps its weight,
     * layers and steps, its row weights are sliced (none stay none) and a per-row delta {@code [B, D]} is narrowed. The
     * view shares this plan's deltas and does not release them; close it before this plan.
     */
    public ModulationGuidance rows(int from, int count) {
        if (from < 0 || count < 1) throw new IllegalArgumentException("rows [" + from + ", " + (from + count) + ") of a guidance plan");
        List<GuidanceTerm> sliced = new ArrayList<>();
        List<Tensor> narrowed = new ArrayList<>();
        for (GuidanceTerm t : terms) {
            double[] rw = t.rowWeights();
            if (rw != null && from + count > rw.length) {
                throw new IllegalArgumentException("rows [" + from + ", " + (from + count) + ") of a plan with " + rw.length + " row weights");
            }
            Tensor delta = t.delta();
            if (delta.dim() == 2 && delta.size(0) > 1) {
                if (from + count > delta.size(0)) {
                    throw new IllegalArgumentException("rows [" + from + ", " + (from + count) + ") of a delta with " + delta.size(0) + " rows");
                }
                delta = Native.keep(delta.narrow(0, from, count));
                narrowed.add(delta);
            }
            sliced.add(new GuidanceTerm(t.label(), delta, t.w(), t.layers(), t.steps(),
                    rw == null ? null : Arrays.copyOfRange(rw, from, from + count)));
        }
        return new ModulationGuidance(Collections.unmodifiableList(sliced), guideFinalNorm, normControl, List.copyOf(narrowed));
    }

    /**
     * The plan of one forward over the stacked batches of several plans, each at its own denoising step (row stepping:
     * requests that joined a batch at different times): the rows of part {@code k} ({@code rows[k]} of them, in order)
     * receive what {@code plans.get(k)} gives them at step {@code steps[k]}. Step windows are resolved here, so the result
     * is meant for {@link #resolve} at any step: each term is active on every step, with row weight 0 on the rows of other
     * parts and on every row of its own part when {@code steps[k]} is outside its window. A row's coefficients are then the
     * very numbers its own plan gives it; other parts' terms add {@code 0·delta} to it, which is exact for finite deltas.
     * Every part must have the same final-norm rule and norm control. The result holds its own references to the
     * deltas (a per-row delta {@code [rows[k], D]} is copied into a zero-padded {@code [B, D]}): close it, the parts keep
     * theirs.
     */
    public static ModulationGuidance stack(List<ModulationGuidance> plans, int[] rows, int[] steps) {
        if (plans.isEmpty() || plans.size() != rows.length || plans.size() != steps.length) {
            throw new IllegalArgumentException(plans.size() + " plans, " + rows.length + " row counts and " + steps.length + " steps");
        }
        boolean finalNorm = plans.get(0).guideFinalNorm;
        NormControl norm = plans.get(0).normControl;
        int total = 0;
        for (int k = 0; k < plans.size(); k++) {
            if (rows[k] < 1 || steps[k] < 0) throw new IllegalArgumentException("part " + k + ": " + rows[k] + " rows at step " + steps[k]);
            if (plans.get(k).guideFinalNorm != finalNorm || plans.get(k).normControl != norm) {
                throw new IllegalArgumentException("part " + k + " of a stacked plan has another final-norm rule or norm control ("
                        + plans.get(k).normControl + " vs " + norm + "): such rows cannot share a forward");
            }
            total += rows[k];
        }
        List<GuidanceTerm> stacked = new ArrayList<>();
        List<Tensor> owned = new ArrayList<>();
        try {
            int offset = 0;
            for (int k = 0; k < plans.size(); k++) {
                for (GuidanceTerm t : plans.get(k).terms) {
                    double[] rw = t.rowWeights();
                    if (rw != null && rw.length != rows[k]) {
                        throw new IllegalArgumentException("part " + k + ", guidance term '" + t.label() + "': " + rw.length + " row weights for "
                                + rows[k] + " rows");
                    }
                    double[] weights = new double[total];
                    if (t.steps().contains(steps[k])) {
                        for (int b = 0; b < rows[k]; b++) weights[offset + b] = rw == null ? 1.0 : rw[b];
                    }
                    Tensor delta = t.delta();
                    if (delta.dim() == 2 && delta.size(0) > 1) { // per-row: pad to the whole batch
                        if (delta.size(0) != rows[k]) {
                            throw new IllegalArgumentException("part " + k + ", guidance term '" + t.label() + "': a delta of " + delta.size(0)
                                    + " rows for " + rows[k] + " rows");
                        }
                        try (org.bytedeco.javacpp.PointerScope scope = new org.bytedeco.javacpp.PointerScope()) {
                            Tensor padded = org.bytedeco.pytorch.global.torch.zeros(new long[] {total, delta.size(1)}, delta.options());
                            padded.narrow(0, offset, rows[k]).copy_(delta);
                            delta = Native.keep(padded);
                        }
                    } else {
                        delta = Native.keep(delta);
                    }
                    owned.add(delta);
                    stacked.add(new GuidanceTerm(t.label(), delta, t.w(), t.layers(), StepWindow.all(), weights));
                }
                offset += rows[k];
            }
        } catch (RuntimeException | Error e) {
            owned.forEach(Native::release);
            throw e;
        }
        return new ModulationGuidance(Collections.unmodifiableList(stacked), finalNorm, norm, List.copyOf(owned));
    }

    /**
     * {@link #stack} for a row-stepping forward that runs step after step: while the same parts (the same plan objects, in
     * order, with the same row counts) have the same terms inside their step windows, the previous stacked plan (and the
     * guidance offsets it has computed) is reused; otherwise a new one replaces it. The plan returned belongs to the stacker
     * and stays valid until the next call or {@link #close}.
     */
    public static final class Stacker implements AutoCloseable {
        private List<ModulationGuidance> plans = List.of();
        private int[] rows = new int[0];
        private boolean[] active = new boolean[0];
        private ModulationGuidance stacked;

        public ModulationGuidance stack(List<ModulationGuidance> parts, int[] rows, int[] steps) {
            List<Boolean> on = new ArrayList<>();
            for (int k = 0; k < parts.size(); k++) for (GuidanceTerm t : parts.get(k).terms) on.add(t.steps().contains(steps[k]));
            boolean[] active = new boolean[on.size()];
            for (int i = 0; i < active.length; i++) active[i] = on.get(i);
            boolean same = stacked != null && parts.size() == plans.size() && Arrays.equals(rows, this.rows) && Arrays.equals(active, this.active);
            for (int k = 0; same && k < parts.size(); k++) same = parts.get(k) == plans.get(k);
            if (same) return stacked;
            ModulationGuidance next = ModulationGuidance.stack(parts, rows, steps);
            close();
            this.stacked = next;
            this.plans = List.copyOf(parts);
            this.rows = rows.clone();
            this.active = active;
            return next;
        }

        @Override
        public void close() {
            if (stacked != null) stacked.close();
            stacked = null;
            plans = List.of();
        }
    }

    /**
     * Which blocks each row's guidance reaches at denoising step {@code step}: {@code [block][row]} is true when some
     * term's coefficient {@code w·f(block)·rowWeight} is non-zero there. Families whose guidance changes more than the
     * added offset (COSMOS: with guidance on, the pooled term leaves the blocks it does not reach) read it. Checks the
     * layer schedules against {@code numBlocks}.
     */
    public boolean[][] reach(int step, int batch, int numBlocks) {
        boolean[][] out = new boolean[numBlocks][batch];
        if (terms.isEmpty()) return out;
        for (GuidanceTerm t : terms) {
            if (t.rowWeights() != null && t.rowWeights().length != batch) {
                throw new IllegalArgumentException("guidance term '" + t.label() + "': " + t.rowWeights().length + " row weights for a batch of " + batch);
            }
        }
        List<double[]> factors = new ArrayList<>(terms.size());
        for (GuidanceTerm t : terms) factors.add(t.layers().factors(numBlocks));
        for (int l = 0; l < numBlocks; l++) {
            for (int j = 0; j < terms.size(); j++) {
                double[] c = terms.get(j).coefficients(l, numBlocks, step, batch, factors.get(j));
                for (int b = 0; b < batch; b++) out[l][b] |= c[b] != 0.0;
            }
        }
        return out;
    }

    /**
     * What of this plan's work at denoising step {@code step} is decided on the host: every block's per-row coefficients
     * (and the final norm's), as text. Two steps with equal signatures run the same ops on the same cached offsets, so a
     * recorded step graph ({@link io.mmdit4j.runtime.StepGraph}) of one replays the other; a step window that switches a
     * term on or off changes it. Empty without terms.
     */
    public String stepSignature(int step, int batch, int numBlocks) {
        if (terms.isEmpty()) return "";
        StringBuilder sb = new StringBuilder();
        List<double[]> factors = new ArrayList<>(terms.size());
        for (GuidanceTerm t : terms) factors.add(t.layers().factors(numBlocks));
        for (int l = 0; l < numBlocks; l++) {
            for (int j = 0; j < terms.size(); j++) {
                sb.append(Arrays.toString(terms.get(j).coefficients(l, numBlocks, step, batch, factors.get(j)))).append(';');
            }
        }
        if (guideFinalNorm) {
            for (GuidanceTerm t : terms) sb.append(Arrays.toString(t.finalCoefficients(step, batch))).append(';');
        }
        return sb.toString();
    }

    /** No guidance: every block gets {@code temb}. */
    public static ModulationGuidance none() {
        return NONE;
    }

    public static Builder builder() {
        return new Builder();
    }

    public List<GuidanceTerm> terms() {
        return terms;
    }

    public boolean guideFinalNorm() {
        return guideFinalNorm;
    }

    /** How guided vectors are rescaled ({@link NormControl#NONE} unless the builder set it). */
    public NormControl normControl() {
        return normControl;
    }

    public boolean isEmpty() {
        return terms.isEmpty();
    }

    /**
     * Per-block conditioning for one forward at denoising step {@code step}. Call inside the forward's
     * PointerScope: the returned tensors are temporaries of that scope.
     *
     * @param temb [B, D] the plain conditioning vector
     */
    public BlockConditioning resolve(Tensor temb, int step, int numBlocks) {
        int batch = (int) temb.size(0);
        List<double[]> factors = validate(batch, temb.size(1), numBlocks);
        Tensor plainActivated = silu(temb);
        Tensor[] vectors = new Tensor[numBlocks];
        Tensor[] activated = new Tensor[numBlocks];
        Arrays.fill(vectors, temb);
        Arrays.fill(activated, plainActivated);
        if (terms.isEmpty()) return new BlockConditioning(temb, vectors, activated, temb, plainActivated, 1);

        Map<String, Tensor[]> byCoefficients = new HashMap<>();
        Tensor[] offsets = new Tensor[numBlocks];
        for (int l = 0; l < numBlocks; l++) {
            double[][] coefficients = new double[terms.size()][];
            boolean any = false;
            for (int j = 0; j < terms.size(); j++) {
                coefficients[j] = terms.get(j).coefficients(l, numBlocks, step, batch, factors.get(j));
                for (double c : coefficients[j]) any |= c != 0.0;
            }
            if (!any) continue;
            String key = Tensors.dtype(temb) + Arrays.deepToString(coefficients);
            Tensor[] pair = byCoefficients.computeIfAbsent(key, k -> {
                Tensor offset = offset(k, coefficients, temb);
                Tensor guided = normControl.apply(temb, temb.add(offset));
                return new Tensor[] {guided, silu(guided), offset};
            });
            vectors[l] = pair[0];
            activated[l] = pair[1];
            offsets[l] = pair[2];
        }
        Tensor finalVector = temb, finalActivated = plainActivated;
        if (guideFinalNorm) { // HiDream: the final layer always gets w·rowWeight·delta, whatever the layer schedule selects
            double[][] coefficients = new double[terms.size()][];
            boolean any = false;
            for (int j = 0; j < terms.size(); j++) {
                coefficients[j] = terms.get(j).finalCoefficients(step, batch);
                for (double c : coefficients[j]) any |= c != 0.0;
            }
            if (any) {
                String key = Tensors.dtype(temb) + Arrays.deepToString(coefficients);
                Tensor[] pair = byCoefficients.computeIfAbsent(key, k -> {
                    Tensor offset = offset(k, coefficients, temb);
                    Tensor guided = normControl.apply(temb, temb.add(offset));
                    return new Tensor[] {guided, silu(guided), offset};
                });
                finalVector = pair[0];
                finalActivated = pair[1];
            }
        }
        return new BlockConditioning(temb, vectors, activated, finalVector, finalActivated, 1 + byCoefficients.size(), offsets);
    }

    /**
     * Checks every term against a forward of {@code batch} rows, width {@code dim} and {@code numBlocks} blocks (delta
     * shapes, row weights, layer indices) and returns each term's per-layer factors. Throws IllegalArgumentException.
     */
    public List<double[]> validate(int batch, long dim, int numBlocks) {
        for (int j = 0; j < terms.size(); j++) checkTerm(j, terms.get(j), batch, dim);
        return factorsByBlocks.computeIfAbsent(numBlocks, n -> {
            List<double[]> factors = new ArrayList<>(terms.size());
            for (GuidanceTerm t : terms) factors.add(t.layers().factors(n)); // throws for layers outside the model
            return List.copyOf(factors);
        });
    }

    /**
     * {@code Σ_j c_j ⊙ delta_j} for one set of per-row coefficients, [B, D] in temb's dtype. It does not depend
     * on the timestep, so it is computed once per request and reused by every step (owned by this plan).
     * Each product is computed in fp32 and rounded once, as PyTorch's {@code w * delta} does.
     */
    private synchronized Tensor offset(String key, double[][] coefficients, Tensor temb) {
        Tensor cached = offsets.get(key);
        if (cached != null) return cached;
        Tensor sum = null;
        for (int j = 0; j < terms.size(); j++) {
            double[] c = coefficients[j];
            float[] cf = new float[c.length];
            boolean any = false;
            for (int b = 0; b < c.length; b++) {
                cf[b] = (float) c[b];
                any |= c[b] != 0.0;
            }
            if (!any) continue;
            Tensor delta = terms.get(j).delta();
            // [B, 1]; off the CPU filled where the delta lives (a kernel argument each, no host-to-device copy)
            Tensor coef = delta.is_cpu() ? Tensors.fromFloats(cf, c.length, 1) : Tensors.columnOn(cf, delta);
            Tensor weighted = delta.to(ScalarType.Float).mul(coef).to(temb.scalar_type());                   // [B, D]
            sum = sum == null ? weighted : sum.add(weighted);
        }
        offsets.put(key, Native.keep(sum));
        return sum;
    }

    private static void checkTerm(int j, GuidanceTerm term, int batch, long dim) {
        Tensor d = term.delta();
        String name = "guidance term " + j + (term.label() == null ? "" : " ('" + term.label() + "')");
        if (d.dim() != 2 || d.size(1) != dim || (d.size(0) != 1 && d.size(0) != batch)) {
            throw new IllegalArgumentException(name + ": delta has shape " + Arrays.toString(Tensors.shape(d))
                    + ", expected [1, " + dim + "] or [" + batch + ", " + dim + "]");
        }
        if (term.rowWeights() != null && term.rowWeights().length != batch) {
            throw new IllegalArgumentException(name + ": " + term.rowWeights().length + " row weights for a batch of " + batch);
        }
    }

    @Override
    public synchronized void close() {
        for (Tensor d : ownedDeltas) Native.release(d);
        offsets.values().forEach(Native::release);
        offsets.clear();
    }

    @Override
    public String toString() {
        return "ModulationGuidance" + terms + (guideFinalNorm ? " +finalNorm" : "")
                + (normControl == NormControl.NONE ? "" : " norm=" + normControl);
    }

    /** Collects guidance terms; {@link #build()} freezes them. */
    public static final class Builder {
        private final List<GuidanceTerm> terms = new ArrayList<>();
        private boolean guideFinalNorm;
        private NormControl normControl = NormControl.NONE;

        /** Adds {@code w·delta} on the layers of {@code layers}, every step, every row. Takes ownership of {@code delta}. */
        public Builder term(Tensor delta, double w, LayerSchedule layers) {
            return add(new GuidanceTerm(null, delta, w, layers, StepWindow.all(), null));
        }

        /** Adds a fully specified term. Takes ownership of its delta. */
        public Builder add(GuidanceTerm term) {
            terms.add(term);
            return this;
        }

        /** HiDream-style: the final norm always receives the guided vector {@code temb + Σ w·rowWeight·delta} (see the class comment). */
        public Builder guideFinalNorm(boolean on) {
            this.guideFinalNorm = on;
            return this;
        }

        /** Rescales every guided vector as {@code normControl} says (default {@link NormControl#NONE}). */
        public Builder normControl(NormControl normControl) {
            this.normControl = normControl == null ? NormControl.NONE : normControl;
            return this;
        }

        public ModulationGuidance build() {
            return new ModulationGuidance(Collections.unmodifiableList(new ArrayList<>(terms)), guideFinalNorm, normControl);
        }
    }
}
