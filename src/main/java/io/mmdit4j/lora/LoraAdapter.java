package io.mmdit4j.lora;

import io.mmdit4j.flux.FluxKeyMap.RowSlice;
import io.mmdit4j.flux.FluxTransformer;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.io.TensorInfo;
import io.mmdit4j.nn.Linear;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.runtime.Torch;
import io.mmdit4j.sd3.Sd3Transformer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Collectors;

import static org.bytedeco.pytorch.global.torch.cat;

/**
 * A LoRA file, merged into a transformer's weights at a scale: {@code W' = W + s·(alpha/r)·B·A} for every targeted
 * Linear (biases unchanged; {@code r} = rows of A; no alpha means {@code alpha = r}, the diffusers/PEFT default).
 * Reads diffusers/PEFT naming ({@code transformer.<module>.lora_A.weight} (r, in) / {@code .lora_B.weight} (out, r),
 * optional {@code .alpha}) and kohya sd-scripts naming on the original layout ({@code lora_unet_double_blocks_0_img_attn_qkv
 * .lora_down.weight} / {@code .lora_up.weight} / {@code .alpha}); a fused original layer updates the diffusers Linears
 * holding its output rows (the up matrix is split by rows exactly like the weight, the down matrix is shared), with the
 * split sizes taken from the model's configuration. See {@link LoraTargets} for the name resolution.
 *
 * <p><b>Merged, keeping the originals.</b> Merging puts a new tensor into each targeted Linear
 * ({@link Linear#replaceWeight}) and keeps the tensor it replaced; untargeted Linears keep their weights (views of the
 * memory-mapped file, which are read-only and never written). {@link #removeFrom} puts the kept tensors back, so the
 * model is bit-identical to the unmerged one, and a new scale is computed from the kept tensors, so it equals a fresh
 * apply bit for bit. Subtracting the delta instead would save that memory but not restore the weights exactly
 * ({@code (W + D) - D != W} in floating point) and rescaling would accumulate rounding. The cost is nothing for weights
 * that are file views and one extra copy of each targeted weight when the compute dtype differs from the file's. The
 * forward pays nothing (no adapter branch). Deltas are computed in fp32 and the sum rounded once to the weight's dtype.
 *
 * <p>Several LoRAs stack: each keeps what it replaced, so they are removed (or rescaled) last-applied first; touching
 * one that has another merged on top of one of its Linears fails with a clear error. Closing an adapter that is still
 * merged keeps its merge in the model for good. Do not apply, rescale or remove while a forward runs.
 */
public final class LoraAdapter implements AutoCloseable {
    /** Keys whose suffix says what they are; anything else in the file is an unsupported (unmatched) key. */
    private static final String[][] SUFFIXES = {
            {".lora_A.weight", "down"}, {".lora_B.weight", "up"}, {".lora_down.weight", "down"}, {".lora_up.weight", "up"},
            {".lora.down.weight", "down"}, {".lora.up.weight", "up"}, {".alpha", "alpha"}};
    private static final int LISTED = 20;

    /** One adapted layer as the file names it: {@code down} [r, in], {@code up} [out, r], alpha or null (= r). */
    public record Module(String name, String downKey, String upKey, String alphaKey, Tensor down, Tensor up, Double alpha) {
        public long rank() { return down.size(0); }
        public long inFeatures() { return down.size(1); }
        public long outFeatures() { return up.size(0); }
        /** {@code alpha / r}, 1 without an alpha. */
        public double alphaOverRank() { return alpha == null ? 1.0 : alpha / rank(); }
        List<String> keys() {
            List<String> k = new ArrayList<>(List.of(downKey, upKey));
            if (alphaKey != null) k.add(alphaKey);
            return k;
        }
    }

    /** Where one module's output rows go in one Linear. */
    private record Part(Module module, RowSlice slice) {}

    /** One Linear to merge into and what lands in it. */
    private record Target(String name, Linear linear, List<Part> parts) {}

    /**
     * The merge into one model: what was replaced (ours to give back) and what was installed (the model's), per target:
     * the original and the merged weight of a plain Linear, or null and the {@link Linear.LowRank} term of a quantized one.
     */
    private static final class Applied {
        final List<Target> targets;
        final List<Tensor> previous;
        final List<Object> installed;
        LoraReport report;

        Applied(List<Target> targets, List<Tensor> previous, List<Object> installed) {
            this.targets = targets;
            this.previous = previous;
            this.installed = installed;
        }
    }

    private final String origin;
    private final List<Module> modules;
    private final List<String> unsupportedKeys;
    private final Map<Object, Applied> applied = new IdentityHashMap<>();
    private boolean closed;

    private LoraAdapter(String origin, List<Module> modules, List<String> unsupportedKeys) {
        this.origin = origin;
        this.modules = modules;
        this.unsupportedKeys = unsupportedKeys;
    }

    // ---------------------------------------------------------------- reading

    /** Reads a LoRA safetensors file; the matrices stay views of the file. Fails on incomplete or mis-shaped modules. */
    public static LoraAdapter read(Path file) {
        Torch.init();
        try (SafetensorsFile f = SafetensorsFile.open(file); PointerScope scope = new PointerScope()) {
            String origin = f.origin();
            Map<String, String[]> parts = new TreeMap<>(); // module -> [down, up, alpha] keys
            List<String> unsupported = new ArrayList<>();
            for (String key : f.keys()) {
                String[] kind = suffix(key);
                if (kind == null) {
                    unsupported.add(key);
                    continue;
                }
                String module = key.substring(0, key.length() - kind[0].length());
                String[] slot = parts.computeIfAbsent(module, m -> new String[3]);
                int i = kind[1].equals("down") ? 0 : kind[1].equals("up") ? 1 : 2;
                if (slot[i] != null) throw new ModelFormatException(origin + ": LoRA module '" + module + "' has two " + kind[1] + " tensors ('"
                        + slot[i] + "' and '" + key + "')");
                slot[i] = key;
            }
            List<Module> modules = new ArrayList<>();
            try {
                for (Map.Entry<String, String[]> e : parts.entrySet()) {
                    String[] k = e.getValue();
                    if (k[0] == null && k[1] == null) { // an alpha alone adapts nothing
                        unsupported.add(k[2]);
                        continue;
                    }
                    modules.add(module(f, e.getKey(), k[0], k[1], k[2]));
                }
            } catch (RuntimeException ex) {
                for (Module m : modules) {
                    Native.release(m.down());
                    Native.release(m.up());
                }
                throw ex;
            }
            if (modules.isEmpty()) {
                throw new ModelFormatException(origin + ": no LoRA tensors (expected '<module>.lora_A.weight' / '.lora_B.weight' or "
                        + "'.lora_down.weight' / '.lora_up.weight'); found " + f.keys().size() + " other key(s)"
                        + listed(new ArrayList<>(f.keys())));
            }
            unsupported.sort(null);
            return new LoraAdapter(origin, List.copyOf(modules), List.copyOf(unsupported));
        }
    }

    private static String[] suffix(String key) {
        for (String[] s : SUFFIXES) {
            if (key.endsWith(s[0]) && key.length() > s[0].length()) return s;
        }
        return null;
    }

    private static Module module(SafetensorsFile f, String name, String downKey, String upKey, String alphaKey) {
        String origin = f.origin();
        if (downKey == null || upKey == null) {
            throw new ModelFormatException(origin + ": LoRA module '" + name + "' has " + (downKey == null ? "no down (lora_A / lora_down)"
                    : "no up (lora_B / lora_up)") + " matrix beside '" + (downKey == null ? upKey : downKey) + "'");
        }
        TensorInfo d = f.info(downKey), u = f.info(upKey);
        for (TensorInfo i : new TensorInfo[] {d, u}) {
            if (!i.dtype().isFloatingPoint()) {
                throw new ModelFormatException(origin + ": tensor '" + (i == d ? downKey : upKey) + "' has dtype " + i.dtype().safetensorsName()
                        + ", expected a floating-point type");
            }
        }
        if (d.shape().length != 2 || u.shape().length != 2 || d.shape()[0] != u.shape()[1] || d.shape()[0] == 0) {
            throw new ModelFormatException(origin + ": LoRA module '" + name + "': '" + downKey + "' has shape " + Arrays.toString(d.shape())
                    + " and '" + upKey + "' has shape " + Arrays.toString(u.shape()) + ", expected [r, in] and [out, r] with the same rank r > 0");
        }
        Double alpha = null;
        if (alphaKey != null) {
            TensorInfo a = f.info(alphaKey);
            if (a.numel() != 1 || !a.dtype().isFloatingPoint()) {
                throw new ModelFormatException(origin + ": tensor '" + alphaKey + "' has shape " + Arrays.toString(a.shape()) + " and dtype "
                        + a.dtype().safetensorsName() + ", expected one floating-point value");
            }
            try (Tensor t = f.load(alphaKey)) {
                alpha = (double) Tensors.toFloats(t)[0];
            }
            if (!Double.isFinite(alpha)) throw new ModelFormatException(origin + ": tensor '" + alphaKey + "' is " + alpha);
        }
        return new Module(name, downKey, upKey, alphaKey, Tensors.keep(f.load(downKey)), Tensors.keep(f.load(upKey)), alpha);
    }

    public String origin() { return origin; }

    /** The adapted layers, in the file's (sorted) order. */
    public List<Module> modules() { return modules; }

    /** Keys of no LoRA kind this reader knows (reported as unmatched when applying). */
    public List<String> unsupportedKeys() { return unsupportedKeys; }

    // ---------------------------------------------------------------- applying

    /** Merges into a FLUX transformer at {@code scale}; see {@link #apply}. */
    public LoraReport applyTo(FluxTransformer model, double scale, boolean strict) {
        return apply(model, LoraTargets.of(model), scale, strict);
    }

    /** Merges into an SD3 transformer at {@code scale}; see {@link #apply}. */
    public LoraReport applyTo(Sd3Transformer model, double scale, boolean strict) {
        return apply(model, LoraTargets.of(model), scale, strict);
    }

    /** Restores the weights this adapter replaced in {@code model}; false when it was not merged there. */
    public boolean removeFrom(FluxTransformer model) { return remove(model); }

    public boolean removeFrom(Sd3Transformer model) { return remove(model); }

    /** The scale this adapter is merged into {@code model} at, or NaN when it is not. */
    public synchronized double scaleIn(Object model) {
        Applied a = applied.get(model);
        return a == null ? Double.NaN : a.report.scale();
    }

    /**
     * Merges this LoRA at {@code scale} (or, when it is merged into this model already, re-merges it at the new scale
     * from the kept original weights). Keys that target nothing in the model fail in strict mode (the message lists the
     * first 20 and the count) and are reported (and warned about on stderr) otherwise; a LoRA that targets nothing
     * always fails. A LoRA whose matrices do not fit the Linears they name (another model size) always fails, before
     * any weight changes.
     */
    private synchronized LoraReport apply(Object model, LoraTargets t, double scale, boolean strict) {
        checkOpen();
        if (!Double.isFinite(scale)) throw new IllegalArgumentException("LoRA scale must be a finite number, got " + scale);
        List<String> unmatched = new ArrayList<>(unsupportedKeys);
        List<String> matched = new ArrayList<>();
        Map<String, Target> byLinear = new LinkedHashMap<>();
        for (Module m : modules) {
            List<RowSlice> slices = t.resolve(m.name(), m.outFeatures());
            if (slices == null) {
                unmatched.addAll(m.keys());
                continue;
            }
            matched.add(m.name());
            for (RowSlice s : slices) {
                byLinear.computeIfAbsent(s.module(), n -> new Target(n, t.linears.get(n), new ArrayList<>())).parts().add(new Part(m, s));
            }
        }
        unmatched.sort(null);
        if (matched.isEmpty()) {
            throw new ModelFormatException(origin + ": none of its " + modules.size() + " LoRA module(s) targets a Linear of the " + t.model
                    + " (is it a LoRA for another model?); its keys" + listed(unmatched));
        }
        List<Target> targets = new ArrayList<>(byLinear.values());
        for (Target target : targets) validate(target);
        if (!unmatched.isEmpty()) {
            String msg = origin + ": " + unmatched.size() + " LoRA key(s) target nothing in the " + t.model;
            if (strict) throw new ModelFormatException(msg + listed(unmatched));
            org.slf4j.LoggerFactory.getLogger(LoraAdapter.class).warn("{} and are ignored (first: '{}')", msg, unmatched.get(0));
        }

        Applied previous = applied.get(model);
        if (previous != null) {
            requireOnTop(previous, "rescale");
            targets = previous.targets; // the same Linears in the same order as the kept originals
            List<Object> next = installAll(targets, previous.previous, scale);
            for (int i = 0; i < targets.size(); i++) {
                Linear l = targets.get(i).linear();
                Object old = previous.installed.get(i);
                if (old instanceof Linear.LowRank term) l.removeLowRank(term); // drops our previous term
                else Native.release(l.replaceWeight((Tensor) next.get(i)));   // drops our previous merge
                if (next.get(i) instanceof Linear.LowRank term) previous.installed.set(i, term);
                else previous.installed.set(i, next.get(i));
            }
        } else {
            List<Tensor> originals = new ArrayList<>();
            for (Target target : targets) originals.add(target.linear().isQuantized() ? null : target.linear().weight());
            List<Object> next = installAll(targets, originals, scale);
            for (int i = 0; i < targets.size(); i++) {
                if (!(next.get(i) instanceof Linear.LowRank)) targets.get(i).linear().replaceWeight((Tensor) next.get(i)); // originals are ours now
            }
            previous = new Applied(targets, originals, next);
            applied.put(model, previous);
        }
        previous.report = new LoraReport(origin, t.model, scale, matched, targets.stream().map(Target::name).collect(Collectors.toList()), unmatched);
        return previous.report;
    }

    private void validate(Target target) {
        Linear l = target.linear();
        Map<Module, List<RowSlice>> byModule = new LinkedHashMap<>();
        for (Part p : target.parts()) byModule.computeIfAbsent(p.module(), k -> new ArrayList<>()).add(p.slice());
        for (Map.Entry<Module, List<RowSlice>> e : byModule.entrySet()) {
            Module m = e.getKey();
            if (m.inFeatures() != l.inFeatures()) {
                throw new ModelFormatException(origin + ": '" + m.downKey() + "' has shape " + Arrays.toString(Tensors.shape(m.down()))
                        + " but its target '" + target.name() + "' takes " + l.inFeatures() + " inputs (expected [" + m.rank() + ", "
                        + l.inFeatures() + "]): a LoRA for another model size?");
            }
            long next = 0;
            List<RowSlice> slices = new ArrayList<>(e.getValue());
            slices.sort(Comparator.comparingLong(RowSlice::to));
            for (RowSlice s : slices) {
                if (s.to() != next) next = -1;
                else next += s.rows();
            }
            if (next != l.outFeatures()) {
                throw new ModelFormatException(origin + ": '" + m.upKey() + "' has shape " + Arrays.toString(Tensors.shape(m.up()))
                        + ", which does not give the " + l.outFeatures() + " output rows of its target '" + target.name()
                        + "': a LoRA for another model size?");
            }
        }
    }

    /**
     * What every target gets: a plain Linear its merged weight computed from {@code bases} (owned by the caller, not yet
     * installed), a quantized Linear a low-rank term (already added to it: merging would hold its dequantized weight whole).
     */
    private List<Object> installAll(List<Target> targets, List<Tensor> bases, double scale) {
        List<Object> out = new ArrayList<>();
        try {
            for (int i = 0; i < targets.size(); i++) {
                Target t = targets.get(i);
                out.add(t.linear().isQuantized() ? lowRank(t, scale) : merge(t, bases.get(i), scale));
            }
        } catch (RuntimeException e) {
            for (int i = 0; i < out.size(); i++) {
                if (out.get(i) instanceof Linear.LowRank term) targets.get(i).linear().removeLowRank(term);
                else Native.release((Tensor) out.get(i));
            }
            throw e;
        }
        return out;
    }

    /**
     * The LoRA of a quantized Linear as a separate low-rank term {@code x·Aᵀ·(s·B)ᵀ} ({@code A} the modules' down
     * matrices stacked, {@code B} their up rows with {@code scale·alpha/r} folded in, fp32 on the weight's device): the
     * weight stays quantized, the term costs {@code r·(in + out)} multiply-adds per token.
     */
    private static Linear.LowRank lowRank(Target target, double scale) {
        Map<Module, List<RowSlice>> byModule = new LinkedHashMap<>();
        for (Part p : target.parts()) byModule.computeIfAbsent(p.module(), k -> new ArrayList<>()).add(p.slice());
        try (PointerScope scope = new PointerScope(); Device d = target.linear().quantized().device().torchDevice()) {
            TensorVector downs = new TensorVector(), ups = new TensorVector();
            for (Map.Entry<Module, List<RowSlice>> e : byModule.entrySet()) {
                Module m = e.getKey();
                downs.push_back(m.down().to(d, ScalarType.Float));
                ups.push_back(rows(m.up(), e.getValue()).to(d, ScalarType.Float).mul(new Scalar(scale * m.alphaOverRank())));
            }
            Tensor down = downs.size() == 1 ? downs.get(0) : cat(downs, 0);
            Tensor up = ups.size() == 1 ? ups.get(0) : cat(ups, 1);
            return target.linear().addLowRank(Tensors.keep(down.contiguous()), Tensors.keep(up.contiguous()));
        }
    }

    private static Tensor merge(Target target, Tensor base, double scale) {
        try (PointerScope scope = new PointerScope()) {
            Tensor delta = delta(target, DeviceSpec.of(base), scale);
            Tensor merged = base.to(ScalarType.Float).add(delta);                     // fp32 [out, in]
            return Tensors.keep(merged.to(base.scalar_type()).contiguous());
        }
    }

    /** {@code Σ (scale·alpha/r)·B_m·A_m} over the modules landing in {@code target}: fp32 [out, in] on {@code device}. */
    private static Tensor delta(Target target, DeviceSpec device, double scale) {
        Map<Module, List<RowSlice>> byModule = new LinkedHashMap<>();
        for (Part p : target.parts()) byModule.computeIfAbsent(p.module(), k -> new ArrayList<>()).add(p.slice());
        Tensor sum = null;
        try (Device d = device.torchDevice()) {
            for (Map.Entry<Module, List<RowSlice>> e : byModule.entrySet()) {
                Module m = e.getKey();
                Tensor b = rows(m.up(), e.getValue()).to(d, ScalarType.Float);                // [out, r]
                Tensor a = m.down().to(d, ScalarType.Float);                                  // [r, in]
                Tensor term = b.matmul(a).mul(new Scalar(scale * m.alphaOverRank()));       // PEFT's order: (B·A)·scaling
                sum = sum == null ? term : sum.add(term);
            }
        }
        return sum;
    }

    /** The rows of {@code up} that {@code slices} send to one Linear, in the Linear's row order. */
    private static Tensor rows(Tensor up, List<RowSlice> slices) {
        if (slices.size() == 1 && slices.get(0).from() == 0 && slices.get(0).rows() == up.size(0)) return up;
        List<RowSlice> ordered = new ArrayList<>(slices);
        ordered.sort(Comparator.comparingLong(RowSlice::to));
        TensorVector parts = new TensorVector();
        for (RowSlice s : ordered) parts.push_back(up.narrow(0, s.from(), s.rows()));
        return cat(parts, 0);
    }

    private synchronized boolean remove(Object model) {
        checkOpen();
        Applied a = applied.get(model);
        if (a == null) return false;
        requireOnTop(a, "remove");
        for (int i = 0; i < a.targets.size(); i++) {
            Linear l = a.targets.get(i).linear();
            if (a.installed.get(i) instanceof Linear.LowRank term) l.removeLowRank(term);
            else Native.release(l.replaceWeight(a.previous.get(i))); // the model owns the original again
        }
        applied.remove(model);
        return true;
    }

    private void requireOnTop(Applied a, String what) {
        for (int i = 0; i < a.targets.size(); i++) {
            Linear l = a.targets.get(i).linear();
            Object mine = a.installed.get(i);
            boolean onTop = mine instanceof Linear.LowRank ? !l.lowRanks().isEmpty() && l.lowRanks().get(l.lowRanks().size() - 1) == mine
                    : l.weight() == mine;
            if (!onTop) {
                throw new IllegalStateException("cannot " + what + " LoRA " + origin + ": another LoRA was merged into '" + a.targets.get(i).name()
                        + "' after it; remove that one first");
            }
        }
    }

    // ---------------------------------------------------------------- diffusers form

    /**
     * This LoRA as the diffusers/PEFT state dict that diffusers' converters produce for the model
     * ({@code transformer.<linear>.lora_A.weight} / {@code .lora_B.weight}, no alphas): alpha/r folded into the matrices
     * as {@code A·scale_down}, {@code B·scale_up} with {@code scale_down·scale_up = alpha/r} (the converters' balanced
     * split), fused layers with A copied and B split by rows. Matched modules only; tensors owned by the caller.
     */
    public synchronized Map<String, Tensor> toDiffusers(FluxTransformer model) {
        return toDiffusers(LoraTargets.of(model));
    }

    public synchronized Map<String, Tensor> toDiffusers(Sd3Transformer model) {
        return toDiffusers(LoraTargets.of(model));
    }

    private Map<String, Tensor> toDiffusers(LoraTargets t) {
        checkOpen();
        Map<String, Tensor> out = new LinkedHashMap<>();
        try (PointerScope scope = new PointerScope()) {
            for (Module m : modules) {
                List<RowSlice> slices = t.resolve(m.name(), m.outFeatures());
                if (slices == null) continue;
                double s = m.alphaOverRank(), down = s, up = 1.0;
                while (down * 2 < up) {
                    down *= 2;
                    up /= 2;
                }
                Map<String, List<RowSlice>> byLinear = new LinkedHashMap<>();
                for (RowSlice r : slices) byLinear.computeIfAbsent(r.module(), k -> new ArrayList<>()).add(r);
                for (Map.Entry<String, List<RowSlice>> e : byLinear.entrySet()) {
                    String p = "transformer." + e.getKey();
                    Tensor a = m.alpha() == null ? m.down().clone() : m.down().mul(new Scalar(down));
                    Tensor b = rows(m.up(), e.getValue());
                    b = m.alpha() == null ? b.clone() : b.mul(new Scalar(up));
                    putOwned(out, p + ".lora_A.weight", a.contiguous());
                    putOwned(out, p + ".lora_B.weight", b.contiguous());
                }
            }
        } catch (RuntimeException e) {
            Tensors.closeAll(out.values());
            throw e;
        }
        return out;
    }

    private static void putOwned(Map<String, Tensor> out, String key, Tensor t) {
        Tensor old = out.put(key, Tensors.keep(t));
        if (old != null) {
            Native.release(old);
            throw new ModelFormatException("two LoRA modules map to '" + key + "'");
        }
    }

    // ---------------------------------------------------------------- lifecycle

    private void checkOpen() {
        if (closed) throw new IllegalStateException("LoRA " + origin + " is closed");
    }

    private static String listed(List<String> keys) {
        String head = keys.stream().limit(LISTED).map(k -> "'" + k + "'").collect(Collectors.joining(", "));
        return ": " + head + (keys.size() > LISTED ? ", ... (first " + LISTED + " of " + keys.size() + ")" : " (" + keys.size() + ")");
    }

    /** Releases the LoRA matrices; merges still in place stay in their models for good. */
    @Override
    public synchronized void close() {
        if (closed) return;
        closed = true;
        for (Applied a : applied.values()) Tensors.closeAll(a.previous.stream().filter(java.util.Objects::nonNull).toList());
        applied.clear();
        for (Module m : modules) {
            Native.release(m.down());
            Native.release(m.up());
        }
    }
}
