package io.mmdit4j.pipeline;

import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.sampling.Noise;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import java.util.Arrays;

/**
 * The random numbers of one generation, in the order its reference pipeline draws them: by default each image's own CPU
 * generator seeded with its seed ({@link Noise.Stream}: diffusers with one generator per image, so an image is the same in
 * a batch as alone), else the request's {@link GivenDraws}. The request's initial noise
 * ({@link GenerationRequest.Builder#initialNoise}), when given, replaces the draw made by {@link #initial}. A consumer that
 * runs after another (a sampler drawing fresh noise each step, after the initial latents were drawn) replays the earlier
 * draws to reach its place in the streams. Not thread-safe; close it to free the generators.
 */
public final class RandomDraws implements AutoCloseable {
    private final GenerationSettings settings;
    private final GivenDraws given;
    private final long[] seeds;
    private Noise.Stream stream; // made on the first seeded draw
    private int next;            // index of the next given draw

    private RandomDraws(GenerationSettings s) {
        this.settings = s;
        this.given = s.option(GivenDraws.class);
        this.seeds = s.seeds();
    }

    public static RandomDraws of(GenerationSettings s) {
        return new RandomDraws(s);
    }

    /** The initial latents of {@code shape}: the request's initial noise ({@link GenerationSettings#initialLatents}), else the next draw. Owned. */
    public Tensor initial(long[] shape, DType dtype) {
        return settings.initialNoise() != null ? settings.initialLatents(shape, dtype) : next(shape, dtype);
    }

    /** The next standard-normal draw of {@code shape} ({@code [images, ...]}) in {@code dtype}; owned by the caller. */
    public Tensor next(long[] shape, DType dtype) {
        if (given != null) {
            if (next >= given.draws().size()) {
                throw new InvalidRequestException("given draws: the generation needs draw " + (next + 1) + " but only " + given.draws().size() + " were given");
            }
            Tensor t = given.draws().get(next);
            long[] got = Tensors.shape(t);
            if (!Arrays.equals(got, shape)) {
                throw new InvalidRequestException("given draw " + next + " has shape " + Arrays.toString(got) + ", expected " + Arrays.toString(shape));
            }
            next++;
            try (PointerScope scope = new PointerScope()) {
                return Tensors.keep(t.to(dtype.scalarType()).clone());
            }
        }
        if (stream == null) stream = Noise.Stream.perRow(shape, seeds);
        return stream.next(shape, dtype);
    }

    /** Replays (and drops) the draw {@link #initial} made, so the next draw follows it. */
    public void skipInitial(long[] shape, DType dtype) {
        initial(shape, dtype).close();
    }

    @Override
    public void close() {
        if (stream != null) stream.close();
    }
}
