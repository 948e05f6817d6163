package io.mmdit4j.nn;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.runtime.DType;
import org.bytedeco.pytorch.Tensor;

import static org.bytedeco.pytorch.global.torch.gelu_;
import static org.bytedeco.pytorch.global.torch.silu;

/**
 * diffusers {@code FeedForward}: {@code net.2(act(net.0.proj(x)))}, with {@code activation_fn="gelu-approximate"}
 * (GELU-tanh: the transformer blocks) or {@code "linear-silu"} (SiLU: HunyuanVideo's token refiner).
 */
public final class FeedForward implements AutoCloseable {
    final Linear net_0_proj;
    final Linear net_2;
    private final boolean silu; // else GELU-tanh

    public FeedForward(Linear net_0_proj, Linear net_2, boolean silu) {
        this.net_0_proj = net_0_proj;
        this.net_2 = net_2;
        this.silu = silu;
    }

    /** The GELU-tanh feed-forward of the transformer blocks. */
    public static FeedForward load(StateDict sd, String prefix, long dim, long hidden, DType dtype) {
        return load(sd, prefix, dim, hidden, false, dtype);
    }

    /** As {@link #load(StateDict, String, long, long, DType)}, with SiLU ({@code "linear-silu"}) when {@code silu}. */
    public static FeedForward load(StateDict sd, String prefix, long dim, long hidden, boolean silu, DType dtype) {
        return new FeedForward(Linear.load(sd, prefix + ".net.0.proj", dim, hidden, dtype),
                Linear.load(sd, prefix + ".net.2", hidden, dim, dtype), silu);
    }

    public Tensor forward(Tensor x) { // [B,S,D] -> [B,S,D]
        Tensor h = net_0_proj.forward(x);
        return net_2.forward(silu ? silu(h) : gelu_(h, "tanh")); // GELU in place: the hidden state is ours, one [B,S,4D] less
    }

    @Override
    public void close() {
        net_0_proj.close();
        net_2.close();
    }
}
