package io.mmdit4j.pipeline;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

/**
 * The noise a stochastic sampler (HiDream-I1 Fast / Dev's {@code FlowMatchLCMScheduler}) adds at each step,
 * {@code [steps, images, C, h, w]}, instead of the seeded per-image streams: to reproduce a reference run that drew it
 * elsewhere (the golden cases), like {@link GenerationRequest.Builder#initialNoise}. Borrowed, not recorded in settings.
 * A chunk of the request ({@link GenerationSettings#chunk}) takes its images' rows {@code from..to-1} of the same tensor.
 *
 * @param from the first image row of {@code noise} this request's image 0 takes
 * @param to   one past the last image row
 */
public record StepNoise(Tensor noise, int from, int to) implements GenerationOption {
    public StepNoise {
        if (noise == null || noise.isNull() || noise.dim() < 2) {
            throw new IllegalArgumentException("step noise must be a [steps, images, ...] tensor, got "
                    + (noise == null || noise.isNull() ? "none" : Tensors.shapeString(Tensors.shape(noise))));
        }
        if (from < 0 || to > noise.size(1) || from >= to) {
            throw new IllegalArgumentException("step noise rows " + from + ".." + to + " of " + noise.size(1) + " images");
        }
    }

    /** Every image row of {@code noise}. */
    public StepNoise(Tensor noise) {
        this(noise, 0, noise == null || noise.isNull() || noise.dim() < 2 ? 1 : (int) noise.size(1));
    }

    /** {@code [steps, images, ...]} as this request sees it. */
    public long[] shape() {
        long[] s = Tensors.shape(noise);
        s[1] = to - from;
        return s;
    }

    /** Step {@code i}'s noise of this request's images, {@code [images, ...]}, a copy owned by the caller. */
    public Tensor step(int i) {
        try (PointerScope scope = new PointerScope()) {
            return Tensors.keep(noise.select(0, i).narrow(0, from, to - from).clone());
        }
    }

    /** The rows of images {@code from..to-1} of this request (a chunk of it). */
    @Override
    public StepNoise forImages(int from, int to) {
        return new StepNoise(noise, this.from + from, this.from + to);
    }

    @Override
    public void write(ObjectNode s) {
        s.put("step_noise", "given");
    }
}
