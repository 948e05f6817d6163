package io.mmdit4j.pipeline;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.pytorch.Tensor;

/**
 * The noise a stochastic sampler (HiDream-I1 Fast / Dev's {@code FlowMatchLCMScheduler}) adds at each step,
 * {@code [steps, images, C, h, w]}, instead of the seeded per-image streams: to reproduce a reference run that drew it
 * elsewhere (the golden cases), like {@link GenerationRequest.Builder#initialNoise}. Borrowed, not recorded in settings.
 */
public record StepNoise(Tensor noise) implements GenerationOption {
    public StepNoise {
        if (noise == null || noise.isNull() || noise.dim() < 2) {
            throw new IllegalArgumentException("step noise must be a [steps, images, ...] tensor, got "
                    + (noise == null || noise.isNull() ? "none" : Tensors.shapeString(Tensors.shape(noise))));
        }
    }

    @Override
    public void write(ObjectNode s) {
        s.put("step_noise", "given");
    }
}
