package io.mmdit4j.nn;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.OpCounter;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;

import static org.bytedeco.pytorch.global.torch.linear;

/** {@code y = x·Wᵀ + b}, weight {@code [out, in]} as checkpoints store it. */
public final class Linear implements AutoCloseable {
    final Tensor weight; // [out, in]
    final Tensor bias;   // [out] or null
    private final TensorOptional biasOption;
    private final long in;
    private final long out;

    public Linear(Tensor weight, Tensor bias) {
        this.weight = weight;
        this.bias = bias;
        this.out = weight.size(0);
        this.in = weight.size(1);
        this.biasOption = Native.keep(bias == null ? new TensorOptional() : new TensorOptional(bias));
    }

    /** Loads {@code prefix.weight} {@code [out, in]} and {@code prefix.bias} {@code [out]}. */
    public static Linear load(StateDict sd, String prefix, long in, long out, DType dtype) {
        Tensor w = sd.take(prefix + ".weight", dtype, out, in);
        Tensor b = sd.take(prefix + ".bias", dtype, out);
        return new Linear(w, b);
    }

    public static Linear loadNoBias(StateDict sd, String prefix, long in, long out, DType dtype) {
        return new Linear(sd.take(prefix + ".weight", dtype, out, in), null);
    }

    public Tensor forward(Tensor x) { // [..., in] -> [..., out]
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

    public long inFeatures() { return in; }
    public long outFeatures() { return out; }
    public Tensor weight() { return weight; }
    public Tensor bias() { return bias; }

    @Override
    public void close() {
        Native.release(biasOption);
        Native.release(weight);
        Native.release(bias);
    }
}
