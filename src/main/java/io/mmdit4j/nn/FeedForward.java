package io.mmdit4j.nn;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.runtime.DType;
import org.bytedeco.pytorch.Tensor;

import static org.bytedeco.pytorch.global.torch.gelu_;

/** diffusers {@code FeedForward(dim, activation_fn="gelu-approximate")}: {@code net.2(GELU_tanh(net.0.proj(x)))}. */
public final class FeedForward implements AutoCloseable {
    final Linear net_0_proj;
    final Linear net_2;

    public FeedForward(Linear net_0_proj, Linear net_2) {
        this.net_0_proj = net_0_proj;
        this.net_2 = net_2;
    }

    public static FeedForward load(StateDict sd, String prefix, long dim, long hidden, DType dtype) {
        return new FeedForward(Linear.load(sd, prefix + ".net.0.proj", dim, hidden, dtype),
                Linear.load(sd, prefix + ".net.2", hidden, dim, dtype));
    }

    public Tensor forward(Tensor x) { // [B,S,D] -> [B,S,D]
        return net_2.forward(gelu_(net_0_proj.forward(x), "tanh")); // in place: the hidden state is ours, one [B,S,4D] less
    }

    @Override
    public void close() {
        net_0_proj.close();
        net_2.close();
    }
}
