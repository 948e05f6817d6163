package io.mmdit4j.nn;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.runtime.DType;
import org.bytedeco.pytorch.Tensor;

import static org.bytedeco.pytorch.global.torch.silu;

/**
 * diffusers {@code FeedForward(dim, activation_fn=...)}: {@code net.2(act(net.0.proj(x)))}, with the tanh-approximated
 * GELU ({@code "gelu-approximate"}: the FLUX, SD3 and HunyuanVideo blocks; with biases), the exact erf GELU
 * ({@code "gelu"}: COSMOS, {@code bias=False}) or SiLU ({@code "linear-silu"}: HunyuanVideo's token refiner).
 */
public final class FeedForward implements AutoCloseable {
    /** The activation between the two Linears. */
    public enum Activation { GELU_TANH, GELU, SILU }

    final Linear net_0_proj;
    final Linear net_2;
    private final Activation activation;

    public FeedForward(Linear net_0_proj, Linear net_2, Activation activation) {
        this.net_0_proj = net_0_proj;
        this.net_2 = net_2;
        this.activation = activation;
    }

    /** {@code activation_fn="gelu-approximate"} with biases: the transformer blocks. */
    public static FeedForward load(StateDict sd, String prefix, long dim, long hidden, DType dtype) {
        return load(sd, prefix, dim, hidden, Activation.GELU_TANH, dtype);
    }

    /** With biases and {@code activation}. */
    public static FeedForward load(StateDict sd, String prefix, long dim, long hidden, Activation activation, DType dtype) {
        return new FeedForward(Linear.load(sd, prefix + ".net.0.proj", dim, hidden, dtype),
                Linear.load(sd, prefix + ".net.2", hidden, dim, dtype), activation);
    }

    /** {@code activation_fn="gelu"} (exact erf GELU) without biases ({@code bias=False}). */
    public static FeedForward loadExactNoBias(StateDict sd, String prefix, long dim, long hidden, DType dtype) {
        Linear in = Linear.loadNoBias(sd, prefix + ".net.0.proj", dim, hidden, dtype);
        try {
            return new FeedForward(in, Linear.loadNoBias(sd, prefix + ".net.2", hidden, dim, dtype), Activation.GELU);
        } catch (RuntimeException e) {
            in.close();
            throw e;
        }
    }

    public Tensor forward(Tensor x) { // [B,S,D] -> [B,S,D]
        Tensor h = net_0_proj.forward(x);
        return net_2.forward(switch (activation) { // GELU in place: the hidden state is ours, one [B,S,4D] less
            case GELU_TANH -> Ops.gelu(h, "tanh");
            case GELU -> Ops.gelu(h, "none");
            case SILU -> silu(h);
        });
    }

    @Override
    public void close() {
        net_0_proj.close();
        net_2.close();
    }
}
