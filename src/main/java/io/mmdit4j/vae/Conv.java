package io.mmdit4j.vae;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.runtime.DType;
import org.bytedeco.pytorch.Tensor;

/**
 * A VAE convolution: 2-D ({@link Conv2d}) or frame-causal 3-D (HunyuanVideo's {@code CausalConv3d}). Like any op, its
 * result belongs to the enclosing scope.
 */
public interface Conv extends AutoCloseable {
    Tensor forward(Tensor x); // [B, in, ...] -> [B, out, ...]

    @Override
    void close();

    /** Loads a stride-1 convolution whose padding keeps the spatial size ({@code kernel / 2}; causal in time for 3-D). */
    @FunctionalInterface
    interface Loader {
        Conv load(StateDict sd, String prefix, long in, long out, int kernel, DType dtype);
    }
}
