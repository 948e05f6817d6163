package io.mmdit4j.nn;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.OpCounter;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;

import static org.bytedeco.pytorch.global.torch.linear;

/** {@code y = x·Wᵀ + b}, weight {@code [out, in]} as checkpoints store it. */
public final class Linear implements AutoCloseable {
    Tensor weight; // [out, in]; replaced only through replaceWeight (LoRA merging)
    final Tensor bias;   // [out] or null
    private final TensorOptional biasOption;
    private final long in;
    private final long out;
    private Tensor loraA, loraB;                          // attached training adapter (borrowed), or null
    private org.bytedeco.pytorch.Scalar loraScale;

    public Linear(Tensor weight, Tensor bias) {
        this.weight = weight;
        this.bias = bias;
        this.out = weight.size(0);
        this.in = weight.size(1);
        this.biasOption = Native.keep(bias == null ? new TensorOptional() : new TensorOptional(bias));
    }

    /**
     * Loads {@code prefix.weight} {@code [out, in]} and {@code prefix.bias} {@code [out]}; the Linear is listed under
     * {@code prefix} in {@code sd}'s {@linkplain StateDict#built(Class) built modules} (how models name their Linears).
     */
    public static Linear load(StateDict sd, String prefix, long in, long out, DType dtype) {
        return sd.built(prefix, Modules.weightAndBias(sd, prefix, dtype, Linear::new, out, in));
    }

    public static Linear loadNoBias(StateDict sd, String prefix, long in, long out, DType dtype) {
        return sd.built(prefix, new Linear(sd.take(prefix + ".weight", dtype, out, in), null));
    }

    public Tensor forward(Tensor x) { // [..., in] -> [..., out]
        if (loraA != null) return withLora(x, plain(x));
        return plain(x);
    }

    private Tensor plain(Tensor x) {
        if (OpCounter.recording()) {
            OpCounter.linear(x.numel() / in, in, out, DType.of(x.scalar_type()));
            if (OpCounter.timing()) {
                long t0 = System.nanoTime();
                Tensor y = linear(x, weight, biasOption);
                OpCounter.linearNanos(System.nanoTime() - t0);
                return y;
            }
        }
        return linear(x, weight, biasOption);
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
        long ka = a.size(-1), kb = b.size(-1);
        if (ka + kb != in || a.numel() / ka != b.numel() / kb) {
            throw new IllegalArgumentException("concatenated input " + java.util.Arrays.toString(io.mmdit4j.runtime.Tensors.shape(a))
                    + " + " + java.util.Arrays.toString(io.mmdit4j.runtime.Tensors.shape(b)) + " does not match weight [" + out + ", " + in + "]");
        }
        if (loraA != null) {
            try (org.bytedeco.javacpp.PointerScope scope = new org.bytedeco.javacpp.PointerScope()) {
                return io.mmdit4j.runtime.Tensors.keep(forward(org.bytedeco.pytorch.global.torch.cat(new org.bytedeco.pytorch.TensorVector(a, b), -1)));
            }
        }
        if (a.scalar_type().value != weight.scalar_type().value || b.scalar_type().value != weight.scalar_type().value) {
            // autocast (training in bf16 with fp32 weights): the two products by the autocast-aware linear, added out of place
            try (org.bytedeco.javacpp.PointerScope scope = new org.bytedeco.javacpp.PointerScope()) {
                return io.mmdit4j.runtime.Tensors.keep(linear(a, weight.narrow(1, 0, ka), biasOption).add(linear(b, weight.narrow(1, ka, kb))));
            }
        }
        long rows = a.numel() / ka;
        boolean timed = OpCounter.timing();
        if (OpCounter.recording()) {
            OpCounter.linear(rows, ka, out, DType.of(a.scalar_type()));
            OpCounter.linear(rows, kb, out, DType.of(b.scalar_type()));
        }
        long t0 = timed ? System.nanoTime() : 0;
        Tensor y;
        try (Tensor wa = weight.narrow(1, 0, ka); Tensor wb = weight.narrow(1, ka, kb); Tensor wbT = wb.t();
             Tensor b2 = b.reshape(rows, kb)) {
            y = linear(a, wa, biasOption);                                   // [..., out]
            try (Tensor flat = y.view(rows, out)) {
                flat.addmm_(b2, wbT);                                        // += b·W[:, ka:]ᵀ in place (returns flat itself)
            }
        }
        if (timed) OpCounter.linearNanos(System.nanoTime() - t0);
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
     * Installs {@code w} (same shape, dtype and device as the current weight; now owned by this Linear) and returns the
     * previous weight, whose ownership passes to the caller. Used to merge adapters (LoRA) without reloading the model;
     * not to be called while a forward that uses this Linear is running.
     */
    public Tensor replaceWeight(Tensor w) {
        if (w == null || w.isNull()) throw new IllegalArgumentException("replacement weight is null");
        if (w.dim() != 2 || w.size(0) != out || w.size(1) != in) {
            throw new IllegalArgumentException("replacement weight has shape " + java.util.Arrays.toString(io.mmdit4j.runtime.Tensors.shape(w))
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
    public Tensor weight() { return weight; }
    public Tensor bias() { return bias; }

    @Override
    public void close() {
        Native.release(loraScale);
        Native.release(biasOption);
        Native.release(weight);
        Native.release(bias);
    }
}
