package io.mmdit4j.nn;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.runtime.DType;
import org.bytedeco.pytorch.Tensor;

import static org.bytedeco.pytorch.global.torch.gelu_;

/**
 * diffusers {@code FeedForward(dim, activation_fn=...)}: {@code net.2(GELU(net.0.proj(x)))}, with the tanh-approximated
 * GELU ({@code "gelu-approximate"}: FLUX, SD3, HunyuanVideo; with biases) or the exact erf GELU ({@code "gelu"}: COSMOS,
 * {@code bias=False}).
 */
public final class FeedForward implements AutoCloseable {
    final Linear net_0_proj;
    final Linear net_2;
    private final String approximate; // "tanh" or "none"

    public FeedForward(Linear net_0_proj, Linear net_2) {
        this(net_0_proj, net_2, true);
    }

    /** @param tanh the tanh approximation ({@code gelu-approximate}), else the exact erf GELU ({@code gelu}) */
    public FeedForward(Linear net_0_proj, Linear net_2, boolean tanh) {
        this.net_0_proj = net_0_proj;
        this.net_2 = net_2;
        this.approximate = tanh ? "tanh" : "none";
    }

    /** {@code activation_fn="gelu-approximate"} with biases. */
    public static FeedForward load(StateDict sd, String prefix, long dim, long hidden, DType dtype) {
        return new FeedForward(Linear.load(sd, prefix + ".net.0.proj", dim, hidden, dtype),
                Linear.load(sd, prefix + ".net.2", hidden, dim, dtype));
    }

    /** {@code activation_fn="gelu"} (exact erf GELU) without biases ({@code bias=False}). */
    public static FeedForward loadExactNoBias(StateDict sd, String prefix, long dim, long hidden, DType dtype) {
        Linear in = Linear.loadNoBias(sd, prefix + ".net.0.proj", dim, hidden, dtype);
        try {
            return new FeedForward(in, Linear.loadNoBias(sd, prefix + ".net.2", hidden, dim, dtype), false);
        } catch (RuntimeException e) {
            in.close();
            throw e;
        }
    }

    public Tensor forward(Tensor x) { // [B,S,D] -> [B,S,D]
        return net_2.forward(gelu_(net_0_proj.forward(x), approximate)); // in place: the hidden state is ours, one [B,S,4D] less
    }

    @Override
    public void close() {
        net_0_proj.close();
        net_2.close();
    }
}
