package io.mmdit4j.cosmos;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.nn.Linear;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.nn.Ops;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import io.mmdit4j.runtime.DType;

/**
 * COSMOS's adaLN-LoRA modulation ({@code CosmosAdaLayerNormZero} of a block, {@code CosmosAdaLayerNorm} of
 * {@code norm_out}): {@code linear_2(linear_1(SiLU(embedded_timestep))) + temb} (the low-rank path from the timestep,
 * plus the conditioning vector the block receives, <em>not</em> activated), chunked into (shift, scale[, gate]); the
 * tokens get {@code LayerNorm(x)·(1 + scale) + shift} (eps 1e-6, no affine).
 */
final class CosmosAdaLayerNorm implements AutoCloseable {
    final Linear linear_1; // [r, D]
    final Linear linear_2; // [chunks·D, r]
    private final int chunks;

    private CosmosAdaLayerNorm(Linear l1, Linear l2, int chunks) {
        this.linear_1 = l1;
        this.linear_2 = l2;
        this.chunks = chunks;
    }

    /** @param chunks 3 for a block's norm (shift, scale, gate), 2 for {@code norm_out} (shift, scale) */
    static CosmosAdaLayerNorm load(StateDict sd, String p, long dim, long rank, int chunks, DType dtype) {
        Linear l1 = Linear.loadNoBias(sd, p + ".linear_1", dim, rank, dtype);
        try {
            return new CosmosAdaLayerNorm(l1, Linear.loadNoBias(sd, p + ".linear_2", rank, chunks * dim, dtype), chunks);
        } catch (RuntimeException e) {
            l1.close();
            throw e;
        }
    }

    /**
     * The modulation vectors [B, D] each: (shift, scale, gate) or (shift, scale).
     *
     * @param activatedTimestep {@code SiLU(embedded_timestep)} [B, D]
     * @param temb              the conditioning this norm receives [B, ≥ chunks·D]; only its first chunks·D columns are used
     */
    TensorVector modulation(Tensor activatedTimestep, Tensor temb) {
        Tensor m = linear_2.forward(linear_1.forward(activatedTimestep));
        long width = m.size(1);
        Tensor t = temb.size(1) == width ? temb : temb.narrow(1, 0, width);
        return m.add(t).chunk(chunks, 1);
    }

    /** {@code LayerNorm(x)·(1 + scale) + shift} for x [B, N, D]. */
    static Tensor modulate(Tensor x, Tensor shift, Tensor scale) {
        return Ops.layerNormModulate(x, 1e-6, shift, scale);
    }

    @Override
    public void close() {
        Modules.closeAll(linear_1, linear_2);
    }
}
