package io.mmdit4j.nn;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.io.quant.Dequant;
import io.mmdit4j.io.quant.QuantizedTensor;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.OpCounter;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.TensorOptions;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.bytedeco.pytorch.global.torch.empty;
import static org.bytedeco.pytorch.global.torch.linear;

/**
 * {@code y = x·Wᵀ + b}, weight {@code [out, in]} as checkpoints store it.
 *
 * <p>The weight is a plain tensor, or quantized data ({@link QuantizedTensor}: GGUF blocks, bitsandbytes 4-bit, fp8) that
 * stays in its format: each forward dequantizes it into the input's dtype on the data's device, {@link #CHUNK_ELEMENTS}
 * elements (whole rows) at a time, and multiplies each chunk into its output columns, so the dequantized weight never
 * exists whole (a chunk's temporaries stay in the cache and one weight of FLUX's single blocks would otherwise take
 * 264 MB in fp32). Quantized Linears take LoRAs as a separate low-rank path ({@link #addLowRank}), since merging into a
 * dequantized weight would hold it whole.
 */
public final class Linear implements AutoCloseable {
    /** Dequantized elements per chunk of a quantized weight: 2M (8 MB of fp32 temporaries). */
    public static final long CHUNK_ELEMENTS = Long.getLong("mmdit.quant.chunk", 1L << 21);

    Tensor weight; // [out, in]; replaced only through replaceWeight (LoRA merging); null when quantized
    private final QuantizedTensor quantized; // null when plain
    final Tensor bias;   // [out] or null
    private final TensorOptional biasOption;
    private final long in;
    private final long out;
    private final List<LowRank> lowRanks = new ArrayList<>();
    private Tensor staged;                   // an offloaded weight's device copy while its block runs ({@link #stage})
    private QuantizedTensor stagedQuantized; // the same for quantized data

    /** A low-rank term {@code x·downᵀ·upᵀ} added to the output ({@code down [r, in]}, {@code up [out, r]}, owned). */
    public static final class LowRank {
        final Tensor down, up;

        LowRank(Tensor down, Tensor up) {
            this.down = down;
            this.up = up;
        }
    }
    private Tensor loraA, loraB;                          // attached training adapter (borrowed), or null
    private org.bytedeco.pytorch.Scalar loraScale;

    public Linear(Tensor weight, Tensor bias) {
        this.weight = weight;
        this.quantized = null;
        this.bias = bias;
        this.out = weight.size(0);
        this.in = weight.size(1);
        this.biasOption = Native.keep(bias == null ? new TensorOptional() : new TensorOptional(bias));
    }

    /** A Linear over quantized weight data {@code [out, in]} (owned from now on). */
    public Linear(QuantizedTensor weight, Tensor bias) {
        long[] s = weight.shape();
        if (s.length != 2) throw new IllegalArgumentException("a Linear weight is 2-D, got " + weight.format() + " " + Arrays.toString(s));
        this.weight = null;
        this.quantized = weight;
        this.bias = bias;
        this.out = s[0];
        this.in = s[1];
        this.biasOption = Native.keep(bias == null ? new TensorOptional() : new TensorOptional(bias));
    }

    /**
     * Loads {@code prefix.weight} {@code [out, in]} and {@code prefix.bias} {@code [out]}; the Linear is listed under
     * {@code prefix} in {@code sd}'s {@linkplain StateDict#built(Class) built modules} (how models name their Linears).
     * A quantized weight stays quantized ({@link StateDict#takeQuantized}).
     */
    public static Linear load(StateDict sd, String prefix, long in, long out, DType dtype) {
        QuantizedTensor q = sd.takeQuantized(prefix + ".weight", out, in);
        if (q == null) return sd.built(prefix, Modules.weightAndBias(sd, prefix, dtype, Linear::new, out, in));
        try {
            return sd.built(prefix, of(q, sd.take(prefix + ".bias", dtype, out), dtype));
        } catch (RuntimeException e) {
            q.close();
            throw e;
        }
    }

    public static Linear loadNoBias(StateDict sd, String prefix, long in, long out, DType dtype) {
        QuantizedTensor q = sd.takeQuantized(prefix + ".weight", out, in);
        if (q != null) return sd.built(prefix, of(q, null, dtype));
        return sd.built(prefix, new Linear(sd.take(prefix + ".weight", dtype, out, in), null));
    }

    /**
     * An unquantized matrix a quantized file keeps in another dtype of the same width (F16 with bf16 compute, BF16 with
     * fp16) converted once, here, instead of in every forward: the copy takes no more memory than the file's, and the
     * per-forward conversion was ~6% of a bf16 Q8_0 forward's Linear time. {@code q} is closed then; not converted when
     * the conversion would grow the weight (F16 with fp32 compute stays converted per forward, so the model's memory stays
     * the file's size) or when it is quantized: the Linear then keeps {@code q}.
     */
    private static Linear of(QuantizedTensor q, Tensor bias, DType dtype) {
        if (!(q instanceof io.mmdit4j.io.quant.PlainTensor) || Dequant.same(q.valueType(), dtype.scalarType())
                || DType.of(q.valueType()).bytes() != dtype.bytes()) return new Linear(q, bias);
        Tensor w = q.dequantize(dtype.scalarType());
        q.close();
        return new Linear(w, bias);
    }

    public Tensor forward(Tensor x) { // [..., in] -> [..., out]
        io.mmdit4j.runtime.Placement.require("linear", x, weight);
        if (loraA != null) return withLora(x, plain(x));
        return plain(x);
    }

    private Tensor plain(Tensor x) {
        if (OpCounter.recording()) {
            OpCounter.linear(x.numel() / in, in, out, DType.of(x.scalar_type()));
            if (OpCounter.timing()) {
                long t0 = System.nanoTime();
                Tensor y = compute(x);
                OpCounter.linearNanos(System.nanoTime() - t0);
                return y;
            }
        }
        return compute(x);
    }

    private Tensor compute(Tensor x) {
        if (quantized == null && lowRanks.isEmpty()) return linear(x, staged != null ? staged : weight, biasOption);
        Tensor y = quantized == null ? linear(x, staged != null ? staged : weight, biasOption) : byChunks(x, null);
        return lowRanks.isEmpty() ? y : addLowRanks(y, x, null);
    }

    /**
     * {@code [a, b]·Wᵀ + bias} for {@code a [..., ka]} and {@code b [..., in - ka]} without materialising the
     * concatenation: one GEMM on the column view {@code W[:, :ka]} and one on {@code W[:, ka:]} accumulated into its
     * output ({@code addmm_}). The views are strided, not copied (BLAS reads them with a leading dimension), so this
     * saves a {@code [..., in]} temporary — 24 MB in a FLUX single block at 384 tokens, 0.7 GB at 4,608 — for the
     * same FLOPs. Sums the two halves of the dot product separately, so it differs from {@link #forward} of the
     * concatenation by fp rounding only.
     */
    public Tensor forwardConcat(Tensor a, Tensor b) { // [..., ka] and [..., in-ka] -> [..., out]
        io.mmdit4j.runtime.Placement.require("linear", a, b, weight);
        long ka = a.size(-1), kb = b.size(-1);
        if (ka + kb != in || a.numel() / ka != b.numel() / kb) {
            throw new IllegalArgumentException("concatenated input " + Arrays.toString(Tensors.shape(a))
                    + " + " + Arrays.toString(Tensors.shape(b)) + " does not match weight [" + out + ", " + in + "]");
        }
        if (loraA != null) {
            try (org.bytedeco.javacpp.PointerScope scope = new org.bytedeco.javacpp.PointerScope()) {
                return io.mmdit4j.runtime.Tensors.keep(forward(org.bytedeco.pytorch.global.torch.cat(new org.bytedeco.pytorch.TensorVector(a, b), -1)));
            }
        }
        if (quantized == null && (a.scalar_type().value != weight.scalar_type().value || b.scalar_type().value != weight.scalar_type().value)) {
            // autocast (training in bf16 with fp32 weights): the two products by the autocast-aware linear, added out of place
            try (org.bytedeco.javacpp.PointerScope scope = new org.bytedeco.javacpp.PointerScope()) {
                return io.mmdit4j.runtime.Tensors.keep(linear(a, weight.narrow(1, 0, ka), biasOption).add(linear(b, weight.narrow(1, ka, kb))));
            }
        }
        boolean timed = OpCounter.timing();
        if (OpCounter.recording()) {
            long rows = a.numel() / ka;
            OpCounter.linear(rows, ka, out, DType.of(a.scalar_type()));
            OpCounter.linear(rows, kb, out, DType.of(b.scalar_type()));
        }
        long t0 = timed ? System.nanoTime() : 0;
        Tensor y = quantized == null ? concat(a, b, staged != null ? staged : weight, biasOption) : byChunks(a, b);
        if (!lowRanks.isEmpty()) y = addLowRanks(y, a, b);
        if (timed) OpCounter.linearNanos(System.nanoTime() - t0);
        return y;
    }

    /** {@code [a, b]·wᵀ + bias} as two GEMMs on column views of {@code w [n, ka + kb]}. */
    private static Tensor concat(Tensor a, Tensor b, Tensor w, TensorOptional bias) {
        long ka = a.size(-1), kb = b.size(-1), rows = a.numel() / ka, n = w.size(0);
        Tensor y;
        try (Tensor wa = w.narrow(1, 0, ka); Tensor wb = w.narrow(1, ka, kb); Tensor wbT = wb.t();
             Tensor b2 = b.reshape(rows, kb)) {
            y = linear(a, wa, bias);                                         // [..., n]
            try (Tensor flat = y.view(rows, n)) {
                flat.addmm_(b2, wbT);                                        // += b·W[:, ka:]ᵀ in place (returns flat itself)
            }
        }
        return y;
    }

    /** PEFT's {@code lora.Linear}: {@code y + lora_B(lora_A(x))·scale} (no dropout, no bias), for training adapters. */
    private Tensor withLora(Tensor x, Tensor y) {
        return y.add(linear(linear(x, loraA), loraB).mul(loraScale));
    }

    /**
     * Attaches an unmerged low-rank adapter, {@code y = x·Wᵀ + b + (x·Aᵀ·Bᵀ)·scale} with {@code A [r, in]} and
     * {@code B [out, r]} (borrowed: the caller keeps and closes them; typically trainable leaves), or removes it
     * ({@code a == null}). Used to train LoRAs; a finished LoRA is merged instead ({@link io.mmdit4j.lora.LoraAdapter}).
     */
    public void attachLora(Tensor a, Tensor b, double scale) {
        Native.release(loraScale);
        loraScale = null;
        if (a == null) {
            loraA = loraB = null;
            return;
        }
        if (a.dim() != 2 || b.dim() != 2 || a.size(1) != in || b.size(0) != out || b.size(1) != a.size(0)) {
            throw new IllegalArgumentException("LoRA matrices A " + java.util.Arrays.toString(io.mmdit4j.runtime.Tensors.shape(a)) + " and B "
                    + java.util.Arrays.toString(io.mmdit4j.runtime.Tensors.shape(b)) + " do not fit a Linear [" + out + ", " + in + "] (A [r, "
                    + in + "], B [" + out + ", r])");
        }
        loraA = a;
        loraB = b;
        loraScale = Native.keep(new org.bytedeco.pytorch.Scalar(scale));
    }

    /** Whether an unmerged adapter is attached ({@link #attachLora}). */
    public boolean hasLora() {
        return loraA != null;
    }

    /**
     * The quantized weight's product, a chunk of whole rows at a time: each chunk dequantized into the input's dtype and
     * multiplied into its output columns ({@code b} non-null: the concatenated input {@code [a, b]}).
     */
    private Tensor byChunks(Tensor a, Tensor b) {
        QuantizedTensor quantized = stagedQuantized != null ? stagedQuantized : this.quantized;
        org.bytedeco.pytorch.global.torch.ScalarType dtype = a.scalar_type();
        long chunk = quantized.rowChunk(CHUNK_ELEMENTS);
        if (chunk >= out) {
            try (Tensor w = quantized.dequantize(dtype)) { // owned: freed here; the product belongs to the caller's scope, as linear()'s does
                return b == null ? linear(a, w, biasOption) : concat(a, b, w, biasOption);
            }
        }
        long[] shape = Tensors.shape(a);
        shape[shape.length - 1] = out;
        Tensor y = empty(shape, new TensorOptions(dtype).device(new org.bytedeco.pytorch.DeviceOptional(a.device())), new MemoryFormatOptional());
        for (long r0 = 0; r0 < out; r0 += chunk) {
            long n = Math.min(chunk, out - r0);
            try (PointerScope scope = new PointerScope(); Tensor w = quantized.dequantizeRows(r0, n, dtype)) {
                TensorOptional bc = bias == null ? new TensorOptional() : new TensorOptional(bias.narrow(0, r0, n));
                Tensor part = b == null ? linear(a, w, bc) : concat(a, b, w, bc);
                y.narrow(-1, r0, n).copy_(part);
            }
        }
        return y;
    }

    /** {@code y + Σ (x·downᵀ)·upᵀ} in place, {@code x = [a, b]} when {@code b} is non-null. */
    private Tensor addLowRanks(Tensor y, Tensor a, Tensor b) {
        try (PointerScope scope = new PointerScope()) {
            for (LowRank l : lowRanks) {
                Tensor down = l.down.to(a.scalar_type()), up = l.up.to(a.scalar_type());
                Tensor h = b == null ? linear(a, down) : concat(a, b, down, new TensorOptional());
                y.add_(linear(h, up));
            }
        }
        return y;
    }

    /**
     * Adds a low-rank term {@code (x·downᵀ)·upᵀ} to every output from now on ({@code down [r, in]}, {@code up [out, r]},
     * on this Linear's device; ownership passes to this Linear); returns its handle for {@link #removeLowRank}. How LoRAs
     * reach quantized weights; not to be called while a forward that uses this Linear is running.
     */
    public LowRank addLowRank(Tensor down, Tensor up) {
        if (down.dim() != 2 || up.dim() != 2 || down.size(1) != in || up.size(0) != out || up.size(1) != down.size(0)) {
            throw new IllegalArgumentException("low-rank factors " + Arrays.toString(Tensors.shape(down)) + " and " + Arrays.toString(Tensors.shape(up))
                    + " do not fit weight [" + out + ", " + in + "] (expected [r, " + in + "] and [" + out + ", r])");
        }
        LowRank l = new LowRank(down, up);
        lowRanks.add(l);
        return l;
    }

    /** Removes (and releases) a term added by {@link #addLowRank}; false when it is not there. */
    public boolean removeLowRank(LowRank l) {
        if (!lowRanks.remove(l)) return false;
        Native.release(l.down);
        Native.release(l.up);
        return true;
    }

    /** The low-rank terms, in the order they were added (unmodifiable). */
    public List<LowRank> lowRanks() {
        return java.util.Collections.unmodifiableList(lowRanks);
    }

    /**
     * Installs {@code w} (same shape, dtype and device as the current weight; now owned by this Linear) and returns the
     * previous weight, whose ownership passes to the caller. Used to merge adapters (LoRA) without reloading the model;
     * not to be called while a forward that uses this Linear is running. Not for quantized weights ({@link #addLowRank}).
     */
    public Tensor replaceWeight(Tensor w) {
        if (quantized != null) throw new IllegalStateException("a quantized (" + quantized.format() + ") weight is not replaced; add a low-rank term");
        if (w == null || w.isNull()) throw new IllegalArgumentException("replacement weight is null");
        if (w.dim() != 2 || w.size(0) != out || w.size(1) != in) {
            throw new IllegalArgumentException("replacement weight has shape " + Arrays.toString(Tensors.shape(w))
                    + ", expected [" + out + ", " + in + "]");
        }
        DeviceSpec now = DeviceSpec.of(weight), next = DeviceSpec.of(w);
        if (DType.of(w.scalar_type()) != DType.of(weight.scalar_type()) || !now.equals(next)) {
            throw new IllegalArgumentException("replacement weight is " + DType.of(w.scalar_type()) + " on " + next
                    + ", expected " + DType.of(weight.scalar_type()) + " on " + now);
        }
        Tensor old = weight;
        weight = w;
        return old;
    }

    public long inFeatures() { return in; }
    public long outFeatures() { return out; }

    /** The plain weight; a quantized Linear has none ({@link #quantized}, {@link #dequantizedWeight}). */
    public Tensor weight() {
        if (quantized != null) throw new IllegalStateException("a quantized (" + quantized.format() + ") Linear has no plain weight");
        return weight;
    }

    public Tensor bias() { return bias; }

    /** Whether the weight is stored quantized. */
    public boolean isQuantized() { return quantized != null; }

    /** The quantized weight (borrowed), or null. */
    public QuantizedTensor quantized() { return quantized; }

    /** The weight in {@code dtype}: the plain weight converted, or the quantized one dequantized (owned by the caller). */
    public Tensor dequantizedWeight(org.bytedeco.pytorch.global.torch.ScalarType dtype) {
        if (quantized != null) return quantized.dequantize(dtype);
        try (PointerScope scope = new PointerScope()) {
            return Tensors.keep(weight.to(dtype));
        }
    }

    /**
     * Starts copying this Linear's weight (held on the host: an offloaded block) to {@code device}, without waiting (the
     * host copy is pinned; the caller orders it with the compute stream); forwards use the copy until {@link #unstage}.
     */
    public void stage(DeviceSpec device) {
        if (staged != null || stagedQuantized != null) return;
        if (quantized != null) {
            stagedQuantized = quantized.to(device);
            return;
        }
        try (PointerScope scope = new PointerScope(); org.bytedeco.pytorch.Device d = device.torchDevice()) {
            staged = Tensors.keep(weight.to(d, weight.scalar_type(), true, false, new MemoryFormatOptional()));
        }
    }

    /** Visits the device copy's tensors made by {@link #stage} (borrowed). */
    public void forEachStaged(java.util.function.Consumer<Tensor> visit) {
        if (staged != null) visit.accept(staged);
        if (stagedQuantized != null) stagedQuantized.forEachTensor(visit);
    }

    /** Drops the device copy made by {@link #stage}. */
    public void unstage() {
        Native.release(staged);
        staged = null;
        if (stagedQuantized != null) stagedQuantized.close();
        stagedQuantized = null;
    }

    /** Whether a device copy made by {@link #stage} is in place. */
    public boolean isStaged() {
        return staged != null || stagedQuantized != null;
    }

    /** Bytes the weight takes in memory (the stored quantized data, or the plain tensor). */
    public long weightBytes() {
        return quantized != null ? quantized.storedBytes() : weight.nbytes();
    }

    @Override
    public void close() {
        unstage();
        Native.release(loraScale);
        Native.release(biasOption);
        Native.release(weight);
        if (quantized != null) quantized.close();
        Native.release(bias);
        for (LowRank l : lowRanks) {
            Native.release(l.down);
            Native.release(l.up);
        }
        lowRanks.clear();
    }
}
