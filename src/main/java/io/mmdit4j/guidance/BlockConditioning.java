package io.mmdit4j.guidance;

import org.bytedeco.pytorch.Tensor;

/**
 * The conditioning each block of one forward receives: a {@code [B, D]} vector per global block index
 * (double blocks first, then single blocks) and one for the final norm, each with its {@code SiLU}
 * (what every adaLN linear consumes). Blocks with the same weights share the same tensors, so this is
 * computed once per distinct vector, not per block. The tensors belong to the forward's scope.
 */
public final class BlockConditioning {
    private final Tensor temb;
    private final Tensor[] vectors;
    private final Tensor[] activated;
    private final Tensor finalVector;
    private final Tensor finalActivated;
    private final int distinct;
    private final Tensor[] offsets;

    BlockConditioning(Tensor temb, Tensor[] vectors, Tensor[] activated, Tensor finalVector, Tensor finalActivated, int distinct) {
        this(temb, vectors, activated, finalVector, finalActivated, distinct, new Tensor[vectors.length]);
    }

    BlockConditioning(Tensor temb, Tensor[] vectors, Tensor[] activated, Tensor finalVector, Tensor finalActivated, int distinct,
                      Tensor[] offsets) {
        this.offsets = offsets;
        this.temb = temb;
        this.vectors = vectors;
        this.activated = activated;
        this.finalVector = finalVector;
        this.finalActivated = finalActivated;
        this.distinct = distinct;
    }

    /**
     * The conditioning of a family whose blocks receive vectors the plan does not form by itself (COSMOS: {@code temb}
     * plus a per-block, gated pooled term): {@code vectors[i]} is what block {@code i} receives, {@code offsets[i]} its
     * guidance offset or null; the {@code SiLU}s are computed once per distinct vector. Tensors of the caller's scope.
     */
    public static BlockConditioning of(Tensor temb, Tensor[] vectors, Tensor finalVector, Tensor[] offsets) {
        if (offsets.length != vectors.length) throw new IllegalArgumentException(vectors.length + " vectors and " + offsets.length + " offsets");
        java.util.Map<Tensor, Tensor> silus = new java.util.IdentityHashMap<>();
        Tensor[] activated = new Tensor[vectors.length];
        for (int i = 0; i < vectors.length; i++) activated[i] = silus.computeIfAbsent(vectors[i], org.bytedeco.pytorch.global.torch::silu);
        Tensor finalActivated = silus.computeIfAbsent(finalVector, org.bytedeco.pytorch.global.torch::silu);
        silus.computeIfAbsent(temb, org.bytedeco.pytorch.global.torch::silu);
        return new BlockConditioning(temb, vectors.clone(), activated, finalVector, finalActivated, silus.size(), offsets.clone());
    }

    /** The plain (unguided) conditioning vector {@code [B, D]}. */
    public Tensor temb() { return temb; }

    public int numBlocks() { return vectors.length; }

    /** The conditioning vector of global block {@code index}: {@code temb + Σ w·f(index)·delta}. */
    public Tensor vector(int index) { return vectors[index]; }

    /** {@code SiLU(vector(index))}. */
    public Tensor activated(int index) { return activated[index]; }

    /** Whether block {@code index} receives something other than the plain vector. */
    public boolean isGuided(int index) { return vectors[index] != temb; }

    public Tensor finalVector() { return finalVector; }

    public Tensor finalActivated() { return finalActivated; }

    /**
     * The guidance offset {@code Σ w·f(index)·rowWeight·delta} [B, D] added to {@code temb} for block {@code index} (before any
     * {@link NormControl}), or null when the block gets the plain vector.
     */
    public Tensor offset(int index) { return offsets[index]; }

    /** How many different vectors this forward uses (1 when unguided). */
    public int distinctVectors() { return distinct; }
}
