package io.mmdit4j.vae;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.runtime.DType;
import org.bytedeco.pytorch.Tensor;

/** A VAE block whose result the caller owns (resnets, mid-block attentions); its temporaries die inside it. */
public interface Block extends AutoCloseable {
    Tensor forward(Tensor x); // [B, C, ...] -> owned [B, C', ...]

    @Override
    void close();

    /** Loads a mid-block attention over {@code channels} with a GroupNorm of {@code groups} and epsilon {@code eps}. */
    @FunctionalInterface
    interface AttentionLoader {
        Block load(StateDict sd, String prefix, long channels, long groups, double eps, DType dtype);
    }
}
