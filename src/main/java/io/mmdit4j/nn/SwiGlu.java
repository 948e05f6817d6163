package io.mmdit4j.nn;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.runtime.DType;
import org.bytedeco.pytorch.Tensor;

import static org.bytedeco.pytorch.global.torch.silu_;

/**
 * A SwiGLU feed-forward without biases, {@code w2(SiLU(w1·x) ⊙ w3·x)}: HiDream's {@code HiDreamImageFeedForwardSwiGLU}
 * (its routed, shared and text-stream experts) under the keys {@code w1}, {@code w2}, {@code w3}.
 */
public final class SwiGlu implements AutoCloseable {
    final Linear w1; // gate [hidden, dim]
    final Linear w2; // down [dim, hidden]
    final Linear w3; // up   [hidden, dim]

    public SwiGlu(Linear w1, Linear w2, Linear w3) {
        this.w1 = w1;
        this.w2 = w2;
        this.w3 = w3;
    }

    public static SwiGlu load(StateDict sd, String prefix, long dim, long hidden, DType dtype) {
        return new SwiGlu(Linear.loadNoBias(sd, prefix + ".w1", dim, hidden, dtype), Linear.loadNoBias(sd, prefix + ".w2", hidden, dim, dtype),
                Linear.loadNoBias(sd, prefix + ".w3", dim, hidden, dtype));
    }

    public long hidden() {
        return w1.outFeatures();
    }

    /** {@code [..., dim] -> [..., dim]}; the hidden activations are overwritten in place (one {@code [..., hidden]} less). */
    public Tensor forward(Tensor x) {
        return io.mmdit4j.runtime.Scopes.local(() -> w2.forward(silu_(w1.forward(x)).mul_(w3.forward(x))));
    }

    @Override
    public void close() {
        Modules.closeAll(w1, w2, w3);
    }
}
