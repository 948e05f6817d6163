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

    public Linear linear1() { return linear_1; }
    public Linear linear2() { return linear_2; }

    public Tensor forward(Tensor x) { // [B, in] -> [B, dim]
        return linear_2.forward(silu(linear_1.forward(x)));
    }

    /**
     * A modulation-guidance direction {@code forward(pooled+) - forward(pooled-)}, [R, D] with R rows of the inputs
     * (1 or B): the pooled-text path of {@code temb}, whose timestep and guidance terms cancel in the difference, so it
     * is computed once per request. Shapes are checked before any native work. Owned by the caller.
     */
    public Tensor direction(Tensor pooledPos, Tensor pooledNeg, java.util.function.UnaryOperator<Tensor> place) {
        long pooledDim = linear_1.inFeatures();
        for (Tensor p : new Tensor[] {pooledPos, pooledNeg}) {
            if (p.dim() != 2 || p.size(1) != pooledDim) {
                throw new IllegalArgumentException("guidance prompt embedding has shape " + java.util.Arrays.toString(io.mmdit4j.runtime.Tensors.shape(p))
                        + ", expected [rows, " + pooledDim + "]");
            }
        }
        if (pooledPos.size(0) != pooledNeg.size(0)) {
            throw new IllegalArgumentException("positive and negative guidance embeddings have " + pooledPos.size(0) + " and "
                    + pooledNeg.size(0) + " rows");
        }
        try (org.bytedeco.pytorch.InferenceMode guard = new org.bytedeco.pytorch.InferenceMode();
             org.bytedeco.javacpp.PointerScope scope = new org.bytedeco.javacpp.PointerScope()) {
            return io.mmdit4j.runtime.Tensors.keep(forward(place.apply(pooledPos)).sub(forward(place.apply(pooledNeg))));
        }
    }

    @Override
    public void close() {
        linear_1.close();
        linear_2.close();
    }
}
