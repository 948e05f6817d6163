package io.mmdit4j.pipeline;

import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Scopes;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.runtime.Transfers;
import io.mmdit4j.sampling.Sampler;
import io.mmdit4j.sampling.Schedule;
import io.mmdit4j.vae.AutoencoderKL;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.util.Arrays;

import static org.bytedeco.pytorch.global.torch.full;
import static org.bytedeco.pytorch.global.torch.rsub;
import static org.bytedeco.pytorch.global.torch.upsample_nearest2d;

/**
 * Image-to-image and inpainting for every family with a {@link LatentSpace}, as diffusers' img2img and inpaint pipelines
 * (FLUX, SD3) do them:
 * <pre>
 * schedule   = the text-to-image schedule from t_start = int(max(N − min(N·strength, N), 0))        (strength truncation)
 * draws      = eps (the posterior sample of each image's init image), then noise: each image's own seeded generator
 * image_lat  = ((mean + std·eps) − shift)·scaling                                   (image i uses init image i mod n)
 * x_start    = σ₀·noise + (1 − σ₀)·image_lat,   σ₀ = the first sigma of the truncated schedule   (scale_noise)
 * inpainting: mask = nearest(binarised mask, latent size), 1 = repaint; after the step to σ_{k+1}:
 *             x = (1 − mask)·proper + mask·x, proper = σ_{k+1}·noise + (1 − σ_{k+1})·image_lat (image_lat after the last step)
 * </pre>
 * That is the rectified-flow form ({@link LatentSpace.Noising#FLOW}); a family whose sampler holds EDM latents
 * (COSMOS, {@link LatentSpace.Noising#EDM}) noises as {@code image_lat + σ·noise} instead, the same schedule truncation and
 * draws otherwise (diffusers has no COSMOS img2img pipeline: this is SDEdit in the sampler's own parametrisation). Video
 * families encode each init picture as a still video of the request's frame count ({@link LatentSpace#encode}).
 * The inpainting pipelines also draw a posterior sample of the masked image (only the 384-channel Fill models read its
 * latents); it comes third, after everything the loop uses, so it is not drawn here. Everything is in the family's latent
 * dtype and, after packing, in its sampler's layout (the blend is elementwise).
 */
public final class ImageToImage {
    private ImageToImage() {}

    /** The schedule a request runs: the family's full schedule, from {@code t_start} when it starts from an init image. */
    public static Schedule truncate(Schedule full, GenerationSettings s) {
        InitImage init = s.option(InitImage.class);
        if (init == null) return full;
        int t = InitImage.startStep(full.steps(), init.strength());
        if (t == 0) return full;
        if (t >= full.steps()) throw new InvalidRequestException("strength " + init.strength() + " with " + full.steps() + " steps runs no step");
        float[] sigmas = full.sigmas(), timesteps = full.timesteps();
        return new Schedule(Arrays.copyOfRange(sigmas, t, sigmas.length), Arrays.copyOfRange(timesteps, t, timesteps.length));
    }

    /** The request's rules (before any work): a mask needs an init image; images and masks exist, are unchanged, divide the batch. */
    public static void check(GenerationSettings s) {
        InitImage init = s.option(InitImage.class);
        InpaintMask mask = s.option(InpaintMask.class);
        if (mask != null && init == null) throw new InvalidRequestException("--mask needs the image it applies to: give --init-image");
        if (init != null) init.check(s.steps(), s.images());
        if (mask != null) mask.check(s.images());
    }

    /**
     * Where the denoising starts: the family's noise (text-to-image), else the noised init latents; and, for inpainting,
     * the blend that wraps the family's sampler. Owned by the caller.
     */
    public static Start start(FamilyPipeline<?> f, GenerationSettings s, Schedule schedule) {
        InitImage init = s.option(InitImage.class);
        if (init == null) return new Start(f.noise(s), null, null, null, schedule);
        LatentSpace space = f.latentSpace();
        if (space == null) throw new UnsupportedOptionException(init.description() + ": not supported by this model");
        long[] shape = space.shape(s);
        DType dtype = space.dtype();
        Tensor imageLatents = null, noise = null, mask = null, start = null;
        try (RandomDraws draws = RandomDraws.of(s); PointerScope scope = new PointerScope()) {
            Tensor eps = Scopes.adopt(draws.next(shape, dtype));                         // draw 1: the posterior samples (owned: to the scope)
            int[] size = space.imageSize(s);
            Tensor unpackedImage = imageLatents(space, s, size, init, eps, shape, dtype);
            // the draws come from the CPU generators (reproducible); they go where the VAE put the latents, once
            Tensor n = Transfers.to(Scopes.adopt(draws.initial(shape, dtype)), DeviceSpec.of(unpackedImage)); // draw 2: the noise
            Tensor sigma = sigma(schedule.sigma(0), dtype, unpackedImage);
            Tensor x = noised(space.noising(), sigma, n, unpackedImage);                 // scale_noise (FLOW)
            start = space.pack(x, s); // owned
            imageLatents = space.pack(unpackedImage, s); // owned
            InpaintMask m = s.option(InpaintMask.class);
            if (m != null) {
                noise = space.pack(n, s); // owned
                mask = space.pack(Transfers.to(maskLatents(m, size, shape, dtype), DeviceSpec.of(unpackedImage)), s); // owned
            }
            Start out = new Start(start, imageLatents, noise, mask, schedule, space.noising());
            start = imageLatents = noise = mask = null;
            return out;
        } finally {
            Native.release(start);
            Native.release(imageLatents);
            Native.release(noise);
            Native.release(mask);
        }
    }

    /** The latents at noise level σ: {@code σ·n + (1 − σ)·x0} (FLOW) or {@code x0 + σ·n} (EDM). */
    private static Tensor noised(LatentSpace.Noising noising, Tensor sigma, Tensor noise, Tensor x0) {
        return switch (noising) {
            case FLOW -> sigma.mul(noise).add(rsub(sigma, new Scalar(1.0)).mul(x0));
            case EDM -> x0.add(sigma.mul(noise));
        };
    }

    /**
     * {@code scale(mean + std·eps)} per image, {@code [B, C, h, w]} or {@code [B, C, F', h, w]} (image i from init image
     * i mod n).
     */
    private static Tensor imageLatents(LatentSpace space, GenerationSettings s, int[] size, InitImage init, Tensor eps, long[] shape, DType dtype) {
        Tensor pixels = InputImages.pixels(init.images(), size[0], size[1], "init image");
        try (AutoencoderKL.Encoded posterior = space.encode(pixels, s)) {
            long[] got = Tensors.shape(posterior.mean());
            if (!Arrays.equals(Arrays.copyOfRange(got, 1, got.length), Arrays.copyOfRange(shape, 1, shape.length))) {
                throw new InvalidRequestException("the VAE encodes " + size[0] + "x" + size[1] + " to latents of " + Arrays.toString(Arrays.copyOfRange(got, 1, got.length))
                        + ", but the model's latents are " + Arrays.toString(Arrays.copyOfRange(shape, 1, shape.length)));
            }
            Tensor mean = rows(posterior.mean(), (int) shape[0]), std = rows(posterior.std(), (int) shape[0]);
            Tensor sample = mean.add(std.mul(eps.to(mean.device(), mean.scalar_type())));
            return Scopes.adopt(space.scale(sample)).to(dtype.scalarType());
        } finally {
            pixels.close();
        }
    }

    /** The binarised masks at the latent size ({@code F.interpolate} nearest), one per image, repeated to the latent channels. */
    private static Tensor maskLatents(InpaintMask m, int[] size, long[] shape, DType dtype) {
        Tensor cond = InputImages.masks(m.masks(), size[0], size[1]);                                    // [n, 1, H, W]
        Tensor small = upsample_nearest2d(cond, new long[] {shape[2], shape[3]}, new org.bytedeco.pytorch.DoubleOptional(),
                new org.bytedeco.pytorch.DoubleOptional());                                                 // [n, 1, h, w]
        return rows(small, (int) shape[0]).repeat(1, shape[1], 1, 1).to(dtype.scalarType());
    }

    /** The binarised masks at the latent size, {@code [images, 1, h, w]} (diffusers' {@code mask_latent}, before packing); owned. */
    public static Tensor maskLatent(GenerationSettings s, long[] shape) {
        InpaintMask m = s.option(InpaintMask.class);
        if (m == null) throw new IllegalArgumentException("no mask in these settings");
        try (PointerScope scope = new PointerScope()) {
            return Tensors.keep(maskLatents(m, new int[] {s.width(), s.height()}, new long[] {shape[0], 1, shape[2], shape[3]}, DType.F32));
        }
    }

    /** Row i of the result is row {@code i mod n} of {@code t} (diffusers' {@code cat([t] * k)} / {@code repeat}). */
    private static Tensor rows(Tensor t, int batch) {
        long n = t.size(0);
        if (n == batch) return t;
        if (batch % n != 0) throw new InvalidRequestException(n + " images for a batch of " + batch);
        long[] repeats = new long[(int) t.dim()];
        Arrays.fill(repeats, 1);
        repeats[0] = batch / n;
        return t.repeat(repeats);
    }

    /** σ as the scheduler holds it ({@code sigmas.to(sample.dtype)}): a one-element tensor of the latents' dtype, on {@code like}'s device. */
    private static Tensor sigma(float sigma, DType dtype, Tensor like) {
        return full(new long[] {1}, new Scalar((double) sigma), new TensorOptions(ScalarType.Float).device(new org.bytedeco.pytorch.DeviceOptional(like.device())))
                .to(dtype.scalarType());
    }

    /**
     * The start of a denoising run: its latents and, when inpainting, what the blend after each step needs (packed). Owned
     * by the caller; {@link #latents} stays owned by this object.
     */
    public static final class Start implements AutoCloseable {
        private final Tensor latents, imageLatents, noise, mask;
        private final Schedule schedule;
        private final LatentSpace.Noising noising;

        Start(Tensor latents, Tensor imageLatents, Tensor noise, Tensor mask, Schedule schedule) {
            this(latents, imageLatents, noise, mask, schedule, LatentSpace.Noising.FLOW);
        }

        Start(Tensor latents, Tensor imageLatents, Tensor noise, Tensor mask, Schedule schedule, LatentSpace.Noising noising) {
            this.noising = noising;
            this.latents = latents;
            this.imageLatents = imageLatents;
            this.noise = noise;
            this.mask = mask;
            this.schedule = schedule;
        }

        /** The initial latents in the sampler's layout (borrowed). */
        public Tensor latents() {
            return latents;
        }

        /** The init latents {@code ((mean + std·eps) − shift)·scaling} in the sampler's layout (borrowed), or null from noise. */
        public Tensor imageLatents() {
            return imageLatents;
        }

        /** {@code sampler}, followed by the inpainting blend when there is a mask. */
        public Sampler sampler(Sampler sampler) {
            if (mask == null) return sampler;
            return new Sampler() {
                @Override
                public Schedule schedule() {
                    return sampler.schedule();
                }

                @Override
                public Tensor step(Tensor prediction, int i, Tensor sample) {
                    try (PointerScope scope = new PointerScope()) {
                        Tensor x = sampler.step(prediction, i, sample);
                        Tensor proper = imageLatents;
                        if (i < schedule.steps() - 1) {
                            Tensor sigma = ImageToImage.sigma(schedule.sigma(i + 1), Tensors.dtype(imageLatents), imageLatents);
                            proper = noised(noising, sigma, noise, imageLatents);
                        }
                        Tensor m = mask.to(x.device(), x.scalar_type());
                        Tensor blended = rsub(m, new Scalar(1.0)).mul(proper.to(x.device(), x.scalar_type())).add(m.mul(x));
                        x.close();
                        return Tensors.keep(blended);
                    }
                }

                @Override
                public void close() {
                    sampler.close();
                }
            };
        }

        @Override
        public void close() {
            Native.release(latents);
            Native.release(imageLatents);
            Native.release(noise);
            Native.release(mask);
        }
    }
}
