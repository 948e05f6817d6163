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

    /** Latents {@code [B, C, h, w]} in the layout the family's sampler steps (FLUX: packed 2×2 tokens); owned by the caller. */
    Tensor pack(Tensor unpacked, GenerationSettings s);
}
