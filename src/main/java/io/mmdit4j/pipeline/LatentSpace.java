package io.mmdit4j.pipeline;

import io.mmdit4j.runtime.DType;
import io.mmdit4j.vae.AutoencoderKL;
import org.bytedeco.pytorch.Tensor;

/**
 * What image-to-image and inpainting need from a family ({@link FamilyPipeline#latentSpace}): the shape of its latents,
 * the VAE that encodes pictures into them, and the layout its sampler steps them in. The shared {@link ImageToImage}
 * does the rest (posterior sample, strength, noising, the inpainting blend) the same way for every family.
 */
public interface LatentSpace {
    /** The request's latents before packing, {@code [images, C, h, w]}: the shape of the noise and of the init latents. */
    long[] shape(GenerationSettings s);

    /** The dtype the latents are drawn and held in (the model's). */
    DType dtype();

    /** The VAE whose encoder gives the init latents ({@code (posterior sample − shift)·scaling}). */
    AutoencoderKL vae();

    /**
     * The {@code [width, height]} the init images and masks are read at: the request's size, unless the family resizes it
     * (HiDream's area-preserving {@link SampleSize}).
     */
    default int[] imageSize(GenerationSettings s) {
        return new int[] {s.width(), s.height()};
    }

    /** Latents {@code [B, C, h, w]} in the layout the family's sampler steps (FLUX: packed 2×2 tokens); owned by the caller. */
    Tensor pack(Tensor unpacked, GenerationSettings s);

    /**
     * A family's latent space from its parts: {@code layout} turns unpacked latents into the sampler's layout (a view or a
     * new tensor; the result is made contiguous and handed out as a tensor of its own).
     */
    static LatentSpace of(AutoencoderKL vae, DType dtype, java.util.function.Function<GenerationSettings, long[]> shape,
                          java.util.function.UnaryOperator<Tensor> layout) {
        return of(vae, dtype, shape, layout, s -> new int[] {s.width(), s.height()});
    }

    /** {@link #of(AutoencoderKL, DType, java.util.function.Function, java.util.function.UnaryOperator)} with the pictures read at {@code imageSize}. */
    static LatentSpace of(AutoencoderKL vae, DType dtype, java.util.function.Function<GenerationSettings, long[]> shape,
                          java.util.function.UnaryOperator<Tensor> layout, java.util.function.Function<GenerationSettings, int[]> imageSize) {
        return new LatentSpace() {
            @Override public long[] shape(GenerationSettings s) { return shape.apply(s); }
            @Override public int[] imageSize(GenerationSettings s) { return imageSize.apply(s); }
            @Override public DType dtype() { return dtype; }
            @Override public AutoencoderKL vae() { return vae; }

            @Override
            public Tensor pack(Tensor unpacked, GenerationSettings s) {
                try (org.bytedeco.javacpp.PointerScope scope = new org.bytedeco.javacpp.PointerScope()) {
                    return io.mmdit4j.runtime.Tensors.keep(layout.apply(unpacked).contiguous().clone());
                }
            }
        };
    }
}
