package io.mmdit4j.pipeline;

import io.mmdit4j.runtime.DType;
import io.mmdit4j.vae.AutoencoderKL;
import org.bytedeco.pytorch.Tensor;

import java.util.function.Function;
import java.util.function.UnaryOperator;

/**
 * What image-to-image and inpainting need from a family ({@link FamilyPipeline#latentSpace}): the shape of its latents,
 * the VAE encoder that turns pictures into them, how its sampler adds noise, and the layout its sampler steps them in.
 * The shared {@link ImageToImage} does the rest (posterior sample, strength, noising, the inpainting blend) the same way
 * for every family, images ({@code [B, C, h, w]}) and videos ({@code [B, C, F', h, w]}) alike.
 */
public interface LatentSpace {
    /** How a sampler's latents at noise level σ relate to the clean latents {@code x0} and the noise {@code n}. */
    enum Noising {
        /** Rectified flow (FLUX, SD3, HiDream, HunyuanVideo): {@code σ·n + (1 − σ)·x0}, diffusers' {@code scale_noise}. */
        FLOW,
        /** EDM / Karras (COSMOS): {@code x0 + σ·n}; the text-to-image start {@code σ_max·n} is the case {@code x0 = 0}. */
        EDM
    }

    /** The request's latents before packing, {@code [images, C, h, w]} or {@code [images, C, F', h, w]}: the shape of the noise and of the init latents. */
    long[] shape(GenerationSettings s);

    /** The dtype the latents are drawn and held in (the model's). */
    DType dtype();

    /**
     * The VAE posterior of init pictures {@code [n, 3, H, W]} float32 in [−1, 1] (CPU), shaped like {@link #shape} but for
     * its first dimension ({@code n}); a video family encodes each picture as a still video of the request's frames.
     */
    AutoencoderKL.Encoded encode(Tensor pixels, GenerationSettings s);

    /** A posterior sample as the family's latents (e.g. {@code (z − shift)·scaling}); owned by the caller. */
    Tensor scale(Tensor sample);

    /** How the family's sampler noises latents; image-to-image starts and the inpainting blend follow it. */
    default Noising noising() {
        return Noising.FLOW;
    }

    /**
     * The {@code [width, height]} the init images and masks are read at: the request's size, unless the family resizes it
     * (HiDream's area-preserving {@link SampleSize}).
     */
    default int[] imageSize(GenerationSettings s) {
        return new int[] {s.width(), s.height()};
    }

    /** Latents in the layout the family's sampler steps (FLUX: packed 2×2 tokens); owned by the caller. */
    Tensor pack(Tensor unpacked, GenerationSettings s);

    /** An image family's latent space: its {@link AutoencoderKL} encodes, {@code (z − shift)·scaling}, rectified-flow noising. */
    static LatentSpace of(AutoencoderKL vae, DType dtype, Function<GenerationSettings, long[]> shape, UnaryOperator<Tensor> layout) {
        return of(vae, dtype, shape, layout, s -> new int[] {s.width(), s.height()});
    }

    /** {@link #of(AutoencoderKL, DType, Function, UnaryOperator)} with the pictures read at {@code imageSize}. */
    static LatentSpace of(AutoencoderKL vae, DType dtype, Function<GenerationSettings, long[]> shape, UnaryOperator<Tensor> layout,
                          Function<GenerationSettings, int[]> imageSize) {
        return new Parts(dtype, shape, layout, imageSize, Noising.FLOW) {
            @Override public AutoencoderKL.Encoded encode(Tensor pixels, GenerationSettings s) { return vae.encode(pixels); }
            @Override public Tensor scale(Tensor sample) { return vae.scaleLatents(sample); }
        };
    }

    /** The parts every latent space has; a family supplies {@link #encode} and {@link #scale}. */
    abstract class Parts implements LatentSpace {
        private final DType dtype;
        private final Function<GenerationSettings, long[]> shape;
        private final UnaryOperator<Tensor> layout;
        private final Function<GenerationSettings, int[]> imageSize;
        private final Noising noising;

        /** {@code layout} turns unpacked latents into the sampler's layout (a view or a new tensor; made contiguous and handed out as a tensor of its own). */
        protected Parts(DType dtype, Function<GenerationSettings, long[]> shape, UnaryOperator<Tensor> layout,
                        Function<GenerationSettings, int[]> imageSize, Noising noising) {
            this.dtype = dtype;
            this.shape = shape;
            this.layout = layout;
            this.imageSize = imageSize;
            this.noising = noising;
        }

        @Override public long[] shape(GenerationSettings s) { return shape.apply(s); }
        @Override public int[] imageSize(GenerationSettings s) { return imageSize.apply(s); }
        @Override public DType dtype() { return dtype; }
        @Override public Noising noising() { return noising; }

        @Override
        public Tensor pack(Tensor unpacked, GenerationSettings s) {
            try (org.bytedeco.javacpp.PointerScope scope = new org.bytedeco.javacpp.PointerScope()) {
                return io.mmdit4j.runtime.Tensors.keep(layout.apply(unpacked).contiguous().clone());
            }
        }
    }
}
