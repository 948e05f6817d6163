package io.mmdit4j.flux;

import io.mmdit4j.runtime.Tensors;
import org.bytedeco.pytorch.Tensor;

import java.util.Arrays;

/**
 * One transformer call's inputs, as {@code FluxTransformer2DModel.forward} takes them.
 *
 * @param hiddenStates        [B, N, in_channels] packed latents
 * @param encoderHiddenStates [B, T, joint_attention_dim] T5 states
 * @param pooledProjections   [B, pooled_projection_dim] CLIP pooled vector
 * @param timestep            [B] sigma in [0, 1] as the pipeline passes it (the model multiplies by 1000)
 * @param guidance            [B] embedded guidance scale (dev models only; null for schnell)
 * @param imgIds              [N, 3] position ids of the image tokens
 * @param txtIds              [T, 3] position ids of the text tokens (zeros in text-to-image)
 */
public record FluxInputs(Tensor hiddenStates, Tensor encoderHiddenStates, Tensor pooledProjections, Tensor timestep,
                         Tensor guidance, Tensor imgIds, Tensor txtIds) {

    /** FluxPipeline's image ids for a packed grid: rows {@code [0, row, col]}, [rows·cols, 3] fp32. */
    public static Tensor imageIds(long rows, long cols) {
        float[] ids = new float[(int) (rows * cols * 3)];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                int i = (int) ((r * cols + c) * 3);
                ids[i + 1] = r;
                ids[i + 2] = c;
            }
        }
        return io.mmdit4j.runtime.Tensors.fromFloats(ids, rows * cols, 3);
    }

    /**
     * Seeded random inputs of the given size (demos, benchmarks): N(0,1) latents [B,16,H,W] packed, text states
     * and pooled vectors, a constant sigma and (dev) guidance. Tensors belong to the caller's scope.
     */
    public static FluxInputs random(FluxConfig c, int batch, int latentH, int latentW, int textTokens, long seed, double sigma,
                                    double guidance) {
        org.bytedeco.pytorch.GeneratorOptional gen = new org.bytedeco.pytorch.GeneratorOptional(
                org.bytedeco.pytorch.global.torch.createCPUGenerator(seed));
        org.bytedeco.pytorch.TensorOptions f32 = new org.bytedeco.pytorch.TensorOptions(org.bytedeco.pytorch.global.torch.ScalarType.Float);
        Tensor latents = org.bytedeco.pytorch.global.torch.randn(new long[] {batch, c.inChannels() / 4, latentH, latentW}, gen, f32);
        Tensor enc = org.bytedeco.pytorch.global.torch.randn(new long[] {batch, textTokens, c.jointAttentionDim()}, gen, f32);
        Tensor pooled = org.bytedeco.pytorch.global.torch.randn(new long[] {batch, c.pooledProjectionDim()}, gen, f32);
        Tensor t = org.bytedeco.pytorch.global.torch.full(new long[] {batch}, new org.bytedeco.pytorch.Scalar(sigma), f32);
        Tensor g = c.guidanceEmbeds()
                ? org.bytedeco.pytorch.global.torch.full(new long[] {batch}, new org.bytedeco.pytorch.Scalar(guidance), f32) : null;
        Tensor txtIds = org.bytedeco.pytorch.global.torch.zeros(new long[] {textTokens, 3}, f32);
        return new FluxInputs(FluxLatents.pack(latents), enc, pooled, t, g, imageIds(latentH / 2, latentW / 2), txtIds);
    }

    /**
     * Accepts what diffusers accepts and brings it to the canonical form: a scalar or one-element timestep /
     * guidance is expanded to the batch, and batch-first ids {@code [1, S, 3]} lose their batch axis.
     * Call inside a PointerScope (the expanded tensors are temporaries).
     */
    FluxInputs normalized() {
        long b = hiddenStates == null || hiddenStates.dim() != 3 ? -1 : hiddenStates.size(0);
        return new FluxInputs(hiddenStates, encoderHiddenStates, pooledProjections, perRow(timestep, b), perRow(guidance, b),
                unbatchedIds(imgIds), unbatchedIds(txtIds));
    }

    private static Tensor perRow(Tensor x, long batch) {
        if (x == null || batch < 1 || x.numel() != 1 || (x.dim() == 1 && batch == 1)) return x;
        return x.reshape(1).expand(new long[] {batch}, false);
    }

    private static Tensor unbatchedIds(Tensor ids) {
        return ids != null && ids.dim() == 3 && ids.size(0) >= 1 ? ids.select(0, 0) : ids;
    }

    /** Checks every shape against the model before any native computation. */
    void validate(FluxConfig c) {
        require(hiddenStates, "hidden_states", 3);
        long b = hiddenStates.size(0), n = hiddenStates.size(1);
        expect(hiddenStates, "hidden_states", b, n, c.inChannels());
        require(encoderHiddenStates, "encoder_hidden_states", 3);
        long t = encoderHiddenStates.size(1);
        expect(encoderHiddenStates, "encoder_hidden_states", b, t, c.jointAttentionDim());
        require(pooledProjections, "pooled_projections", 2);
        expect(pooledProjections, "pooled_projections", b, c.pooledProjectionDim());
        require(timestep, "timestep", 1);
        expect(timestep, "timestep", b);
        if (c.guidanceEmbeds()) {
            if (guidance == null) throw new IllegalArgumentException("this FLUX model embeds guidance (dev): guidance [" + b + "] is required");
            require(guidance, "guidance", 1);
            expect(guidance, "guidance", b);
        } else if (guidance != null) {
            throw new IllegalArgumentException("this FLUX model has no guidance embedder (schnell): pass guidance = null");
        }
        require(imgIds, "img_ids", 2);
        expect(imgIds, "img_ids", n, c.axesDimsRope().length);
        require(txtIds, "txt_ids", 2);
        expect(txtIds, "txt_ids", t, c.axesDimsRope().length);
    }

    private static void require(Tensor x, String name, int rank) {
        if (x == null || x.isNull()) throw new IllegalArgumentException(name + " is required");
        if (x.dim() != rank) {
            throw new IllegalArgumentException(name + " has shape " + Arrays.toString(Tensors.shape(x)) + ", expected rank " + rank);
        }
    }

    private static void expect(Tensor x, String name, long... shape) {
        if (!Arrays.equals(Tensors.shape(x), shape)) {
            throw new IllegalArgumentException(name + " has shape " + Arrays.toString(Tensors.shape(x)) + ", expected " + Arrays.toString(shape));
        }
    }
}
