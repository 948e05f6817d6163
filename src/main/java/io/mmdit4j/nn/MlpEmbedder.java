package io.mmdit4j.nn;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.runtime.DType;
import org.bytedeco.pytorch.Tensor;

import static org.bytedeco.pytorch.global.torch.silu;

/**
 * {@code linear_2(SiLU(linear_1(x)))}: diffusers' {@code TimestepEmbedding} (timestep and guidance
 * embedders) and {@code PixArtAlphaTextProjection} (the pooled-text embedder) share this shape.
 */
public final class MlpEmbedder implements AutoCloseable {
    final Linear linear_1;
    final Linear linear_2;

    public MlpEmbedder(Linear linear_1, Linear linear_2) {
        this.linear_1 = linear_1;
        this.linear_2 = linear_2;
    }

    public static MlpEmbedder load(StateDict sd, String prefix, long in, long dim, DType dtype) {
        return new MlpEmbedder(Linear.load(sd, prefix + ".linear_1", in, dim, dtype),
                Linear.load(sd, prefix + ".linear_2", dim, dim, dtype));
    }

    public Tensor forward(Tensor x) { // [B, in] -> [B, dim]
        return linear_2.forward(silu(linear_1.forward(x)));
    }

    @Override
    public void close() {
        linear_1.close();
        linear_2.close();
    }
}
