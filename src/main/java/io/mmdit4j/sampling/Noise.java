package io.mmdit4j.sampling;

import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.runtime.Torch;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

import java.util.Arrays;

import static org.bytedeco.pytorch.global.torch.cat;
import static org.bytedeco.pytorch.global.torch.createCPUGenerator;

/**
 * Seeded initial noise from PyTorch's CPU generator (mt19937 seeded like {@code torch.Generator("cpu").manual_seed(seed)}):
 * {@link #randn} is {@code torch.randn(shape, generator=..., dtype=dtype)} and {@link #randnPerRow} is what diffusers'
 * {@code randn_tensor} does with a list of generators (one draw of shape {@code [1, ...]} per batch row, concatenated).
 * Results are CPU tensors owned by the caller (move them to the model's device afterwards, as diffusers does with a
 * CPU generator).
 *
 * <p><b>bf16 / fp16 draws depend on the PyTorch version</b> ({@link Kernel}). diffusers draws FLUX latents directly in
 * the pipeline dtype (bf16). libtorch 2.10's CPU kernel, which {@link Kernel#LIBTORCH} calls, fills reduced-precision
 * tensors with uniforms built from only the low 8 (bf16) or 11 (fp16) bits of each generator word and runs Box-Muller
 * in that dtype, so its bf16 noise is <i>not</i> the rounded float32 noise of the same seed; Python PyTorch with the same
 * kernel (2.10 and earlier releases) gives the same bits. Later PyTorch (checked: 2.13) computes in float32 and rounds,
 * which {@link Kernel#FLOAT32_THEN_CAST} reproduces. float32 and float64 draws are the same with both.
 */
public final class Noise {
    private Noise() {}

    /** FLUX latent channels. */
    public static final int FLUX_LATENT_CHANNELS = 16;
    /** SD3 / SD3.5 latent channels. */
    public static final int SD3_LATENT_CHANNELS = 16;

    /** Which PyTorch CPU kernel a reduced-precision draw reproduces. */
    public enum Kernel {
        /** libtorch's own {@code at::randn} in the requested dtype: PyTorch 2.10 (this project's libtorch) and earlier. */
        LIBTORCH,
        /**
         * Draw in float32 (in float64 below 16 elements, where PyTorch's serial path draws doubles) and round to the
         * requested dtype: what later PyTorch releases (checked with 2.13) give for bf16 and fp16.
         */
        FLOAT32_THEN_CAST
    }

    /** {@code torch.randn(shape, generator=Generator("cpu").manual_seed(seed), dtype=dtype)} with libtorch's kernel. */
    public static Tensor randn(long[] shape, long seed, DType dtype) {
        return randn(shape, seed, dtype, Kernel.LIBTORCH);
    }

    /** {@link #randn(long[], long, DType)} reproducing the given PyTorch {@link Kernel}. */
    public static Tensor randn(long[] shape, long seed, DType dtype, Kernel kernel) {
        checkShape(shape);
        checkDtype(dtype);
        checkKernel(kernel);
        Torch.init();
        try (PointerScope scope = new PointerScope()) {
            return Tensors.keep(draw(shape, seed, dtype, kernel));
        }
    }

    /**
     * One generator per batch row ({@code shape[0] == seeds.length}): row {@code b} is
     * {@code randn([1, ...shape[1:]], seed = seeds[b])}, so each image of a batch is reproducible on its own.
     */
    public static Tensor randnPerRow(long[] shape, long[] seeds, DType dtype) {
        return randnPerRow(shape, seeds, dtype, Kernel.LIBTORCH);
    }

    /** {@link #randnPerRow(long[], long[], DType)} reproducing the given PyTorch {@link Kernel}. */
    public static Tensor randnPerRow(long[] shape, long[] seeds, DType dtype, Kernel kernel) {
        checkShape(shape);
        checkDtype(dtype);
        checkKernel(kernel);
        if (shape.length < 1 || shape[0] < 1) {
            throw new IllegalArgumentException("a per-row draw needs a batch axis of at least one row, shape is " + Arrays.toString(shape));
        }
        if (seeds == null || seeds.length != shape[0]) {
            throw new IllegalArgumentException("batch of " + shape[0] + " rows needs " + shape[0] + " seeds, got "
                    + (seeds == null ? "none" : String.valueOf(seeds.length)));
        }
        Torch.init();
        long[] row = shape.clone();
        row[0] = 1;
        try (PointerScope scope = new PointerScope()) {
            Tensor[] rows = new Tensor[seeds.length];
            for (int b = 0; b < seeds.length; b++) rows[b] = draw(row, seeds[b], dtype, kernel);
            return Tensors.keep(cat(new TensorVector(rows), 0));
        }
    }

    private static Tensor draw(long[] shape, long seed, DType dtype, Kernel kernel) {
        return draw(shape, new GeneratorOptional(createCPUGenerator(seed)), dtype, kernel);
    }

    private static Tensor draw(long[] shape, GeneratorOptional generator, DType dtype, Kernel kernel) {
        DType drawn = dtype;
        if (kernel == Kernel.FLOAT32_THEN_CAST && (dtype == DType.BF16 || dtype == DType.F16)) {
            long n = 1;
            for (long s : shape) n *= s;
            // PyTorch's CPU normal kernel: vectorised float fill from 16 elements on, a serial double draw below.
            drawn = n >= 16 ? DType.F32 : DType.F64;
        }
        Tensor t = torch.randn(shape, generator, new TensorOptions(drawn.scalarType()));   // at::randn, as torch.randn
        return drawn == dtype ? t : t.to(dtype.scalarType());
    }

    /**
     * One CPU generator per batch row that goes on drawing, for pipelines that draw more than once from a seeded generator
     * (an img2img posterior sample before the noise, a sampler's fresh noise at every step: diffusers' {@code FlowMatchLCMScheduler}, scale-wise sampling). Row {@code b}'s generator is
     * seeded with {@code seeds[b]}, so an image gets the same numbers in a batch as alone; each draw is one {@code randn}
     * of the row shape per row (libtorch's kernel), in order, concatenated. The first draw equals {@link #randnPerRow}.
     * Not thread-safe; close it to free the generators.
     */
    public static final class Stream implements AutoCloseable {
        private final GeneratorOptional[] generators;
        private final long[] rowShape;

        private Stream(GeneratorOptional[] generators, long[] rowShape) {
            this.generators = generators;
            this.rowShape = rowShape;
        }

        /** @param shape the batch shape {@code [B, ...]} of {@link #next(DType)}; {@code seeds.length == B} */
        public static Stream perRow(long[] shape, long[] seeds) {
            checkShape(shape);
            if (shape.length < 1 || seeds == null || seeds.length != shape[0]) {
                throw new IllegalArgumentException("a per-row stream of shape " + Arrays.toString(shape) + " needs "
                        + (shape.length < 1 ? "a batch axis" : shape[0] + " seeds") + ", got " + (seeds == null ? "none" : String.valueOf(seeds.length)));
            }
            Torch.init();
            long[] row = shape.clone();
            row[0] = 1;
            GeneratorOptional[] g = new GeneratorOptional[seeds.length];
            try (PointerScope scope = new PointerScope()) { // the Generator handles go with the scope; the optionals hold their own copies
                for (int b = 0; b < seeds.length; b++) g[b] = io.mmdit4j.runtime.Native.keep(new GeneratorOptional(createCPUGenerator(seeds[b])));
            }
            return new Stream(g, row);
        }

        /** Rows (images) of every draw. */
        public int rows() {
            return generators.length;
        }

        /** The next draw of the shape the stream was made with, in {@code dtype}; owned by the caller. */
        public Tensor next(DType dtype) {
            long[] shape = rowShape.clone();
            shape[0] = generators.length;
            return next(shape, dtype);
        }

        /** The next draw of {@code shape} ({@code [B, ...]}, B the stream's rows) in {@code dtype}; owned by the caller. */
        public Tensor next(long[] shape, DType dtype) {
            checkShape(shape);
            checkDtype(dtype);
            if (shape.length < 1 || shape[0] != generators.length) {
                throw new IllegalArgumentException("a draw of shape " + Arrays.toString(shape) + " from a stream of " + generators.length + " rows");
            }
            long[] row = shape.clone();
            row[0] = 1;
            try (PointerScope scope = new PointerScope()) {
                Tensor[] rows = new Tensor[generators.length];
                for (int b = 0; b < rows.length; b++) rows[b] = draw(row, generators[b], dtype, Kernel.LIBTORCH);
                return Tensors.keep(rows.length == 1 ? rows[0] : cat(new TensorVector(rows), 0));
            }
        }

        @Override
        public void close() {
            for (GeneratorOptional g : generators) io.mmdit4j.runtime.Native.release(g);
        }
    }

    private static void checkKernel(Kernel kernel) {
        if (kernel == null) throw new IllegalArgumentException("kernel is required");
    }

    /**
     * FluxPipeline's latent noise shape for an image of {@code height × width} pixels:
     * {@code [B, 16, 2·⌊H/16⌋, 2·⌊W/16⌋]} (diffusers floors; BFL's reference rounds up). The packed sequence has
     * {@code ⌊H/16⌋·⌊W/16⌋} tokens (the {@code image_seq_len} of the FLUX schedule).
     */
    public static long[] fluxLatentShape(int batch, int height, int width) {
        if (batch < 1) throw new IllegalArgumentException("batch must be >= 1, got " + batch);
        if (height < 16 || width < 16) {
            throw new IllegalArgumentException("FLUX images must be at least 16x16 pixels (latent grid 2·⌊size/16⌋), got "
                    + width + "x" + height);
        }
        return new long[] {batch, FLUX_LATENT_CHANNELS, 2L * (height / 16), 2L * (width / 16)};
    }

    /** The number of packed FLUX image tokens for {@code height × width} pixels ({@code ⌊H/16⌋·⌊W/16⌋}). */
    public static int fluxImageSeqLen(int height, int width) {
        long[] s = fluxLatentShape(1, height, width);
        return (int) ((s[2] / 2) * (s[3] / 2));
    }

    /** StableDiffusion3Pipeline's latent shape: {@code [B, 16, ⌊H/8⌋, ⌊W/8⌋]}. */
    public static long[] sd3LatentShape(int batch, int height, int width) {
        if (batch < 1) throw new IllegalArgumentException("batch must be >= 1, got " + batch);
        if (height < 8 || width < 8) throw new IllegalArgumentException("SD3 images must be at least 8x8 pixels, got " + width + "x" + height);
        return new long[] {batch, SD3_LATENT_CHANNELS, height / 8, width / 8};
    }

    private static void checkShape(long[] shape) {
        if (shape == null) throw new IllegalArgumentException("shape is required");
        for (long s : shape) {
            if (s < 0) throw new IllegalArgumentException("negative size in shape " + Arrays.toString(shape));
        }
    }

    private static void checkDtype(DType dtype) {
        if (dtype == null || !dtype.isFloatingPoint()) throw new IllegalArgumentException("randn needs a floating dtype, got " + dtype);
    }
}
