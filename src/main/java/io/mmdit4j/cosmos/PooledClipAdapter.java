package io.mmdit4j.cosmos;

import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.io.StateDict;
import io.mmdit4j.nn.Linear;
import io.mmdit4j.nn.MlpEmbedder;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.pytorch.Tensor;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.UnaryOperator;

/**
 * The modulation-guidance paper's pooled-CLIP adapter for COSMOS ({@code CosmosWithPooledCLIP}): a
 * {@code text_embedder_clip} projection {@code P → 3D → 3D} ({@code PixArtAlphaTextProjection} with SiLU, biases) and
 * per-block gains {@code scales [n_blocks, 3D]} (zero-initialised when trained; the base model stays frozen). Block
 * {@code i} receives {@code temb + scales[i]·pooled_emb} with {@code pooled_emb = TE(CLIP_pooled(p))} plus the guidance
 * term; see {@link CosmosTransformer} for which blocks get it.
 *
 * <p>Keys (the reference's state dict, {@code strict=False}): {@code scales}, {@code text_embedder_clip.linear_{1,2}.{weight,bias}}.
 */
public final class PooledClipAdapter implements AutoCloseable {
    /** The adapter's tensor names, in the reference's order. */
    public static final String SCALES = "scales";
    public static final String PREFIX = "text_embedder_clip";

    final MlpEmbedder text_embedder_clip;
    final Tensor scales; // [n_blocks, 3D]

    PooledClipAdapter(MlpEmbedder textEmbedder, Tensor scales) {
        this.text_embedder_clip = textEmbedder;
        this.scales = scales;
    }

    /** Whether a state dict holds an adapter ({@code scales} or {@code text_embedder_clip.*}). */
    public static boolean present(StateDict sd) {
        return sd.contains(SCALES) || sd.keys().stream().anyMatch(k -> k.startsWith(PREFIX + "."));
    }

    /**
     * Loads the adapter of a model with {@code numBlocks} blocks and conditioning width {@code condDim} = 3D; the pooled
     * width P comes from {@code text_embedder_clip.linear_1.weight}. Wrong shapes are errors naming the tensor.
     */
    public static PooledClipAdapter load(StateDict sd, int numBlocks, long condDim, DType dtype) {
        long[] l1 = sd.shape(PREFIX + ".linear_1.weight");
        if (l1 == null || !sd.contains(SCALES)) {
            throw new ModelFormatException(sd.origin() + ": not a pooled-CLIP adapter: expected '" + SCALES + "' and '" + PREFIX
                    + ".linear_{1,2}.{weight,bias}' (found " + Arrays.toString(sd.keys().stream().filter(k -> !k.startsWith("transformer.")).limit(8).toArray()) + ")");
        }
        if (l1.length != 2) throw new ModelFormatException(sd.origin() + ": '" + PREFIX + ".linear_1.weight' has shape " + Arrays.toString(l1) + ", expected [" + condDim + ", P]");
        return load(sd, numBlocks, condDim, l1[1], dtype);
    }

    /** {@link #load(StateDict, int, long, DType)} with the pooled width given (a recording has no shapes to read it from). */
    static PooledClipAdapter load(StateDict sd, int numBlocks, long condDim, long pooledDim, DType dtype) {
        Tensor s = null;
        MlpEmbedder te = null;
        try {
            s = sd.take(SCALES, dtype, numBlocks, condDim);
            Linear a = Linear.load(sd, PREFIX + ".linear_1", pooledDim, condDim, dtype);
            Linear b;
            try {
                b = Linear.load(sd, PREFIX + ".linear_2", condDim, condDim, dtype);
            } catch (RuntimeException e) {
                a.close();
                throw e;
            }
            te = new MlpEmbedder(a, b);
            return new PooledClipAdapter(te, s);
        } catch (ModelFormatException e) {
            Native.release(s);
            throw new ModelFormatException("pooled-CLIP adapter for a model with " + numBlocks + " blocks of width " + condDim / 3 + ": " + e.getMessage(), e);
        }
    }

    /** The adapter's parameter table (reference names, shapes, load order) for a model of {@code numBlocks} blocks and width 3D. */
    public static Map<String, long[]> parameterShapes(int numBlocks, long condDim, long pooledDim) {
        return io.mmdit4j.io.ParameterShapes.of("pooled-CLIP adapter", sd -> load(sd, numBlocks, condDim, pooledDim, DType.F32));
    }

    /** The pooled width P (768 for FLUX.1's CLIP-L). */
    public long pooledDim() {
        return text_embedder_clip.linear1().inFeatures();
    }

    public int numBlocks() {
        return (int) scales.size(0);
    }

    /** 3D. */
    public long conditioningDim() {
        return scales.size(1);
    }

    public Tensor scales() {
        return scales;
    }

    /** {@code TE(pooled) = linear_2(SiLU(linear_1(pooled)))}, [B, 3D]. */
    public Tensor embed(Tensor pooled) {
        return text_embedder_clip.forward(pooled);
    }

    /** {@code TE(pos) − TE(neg)} [R, 3D], computed once per request; owned by the caller. */
    public Tensor direction(Tensor pooledPos, Tensor pooledNeg, UnaryOperator<Tensor> place) {
        return text_embedder_clip.direction(pooledPos, pooledNeg, place);
    }

    /** The tensors under their reference names (views of this adapter's; close them). */
    public Map<String, Tensor> stateDict() {
        Map<String, Tensor> m = new LinkedHashMap<>();
        m.put(SCALES, scales.view(Tensors.shape(scales)));
        m.put(PREFIX + ".linear_1.weight", view(text_embedder_clip.linear1().weight()));
        m.put(PREFIX + ".linear_1.bias", view(text_embedder_clip.linear1().bias()));
        m.put(PREFIX + ".linear_2.weight", view(text_embedder_clip.linear2().weight()));
        m.put(PREFIX + ".linear_2.bias", view(text_embedder_clip.linear2().bias()));
        return m;
    }

    private static Tensor view(Tensor t) {
        return t.view(Tensors.shape(t));
    }

    @Override
    public void close() {
        Modules.closeQuietly(text_embedder_clip);
        Native.release(scales);
    }
}
