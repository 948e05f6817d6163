package io.mmdit4j.sd3;

import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.OpCounter;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.DeviceOptional;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;

import java.util.Arrays;

import static org.bytedeco.pytorch.global.torch.empty;

/**
 * A real-size SD3 forward on meta tensors (shapes only, no weight or activation memory): checks every shape of a
 * configuration at an image size and counts the FLOPs of one transformer call, with modulation guidance on.
 */
public final class Sd3DryRun {
    private Sd3DryRun() {}

    /** SD3's VAE downsamples by 8. */
    public static final int VAE_SCALE = 8;
    /** CLIP (77) + T5 (256) tokens, what StableDiffusion3Pipeline passes by default. */
    public static final int DEFAULT_TEXT_TOKENS = 77 + 256;

    public record Result(Sd3Config config, long[] outputShape, long imageTokens, long textTokens, int batch, double linearFlops,
                         int gemms, double attentionFlops, int attentionCalls) {
        public double totalFlops() { return linearFlops + attentionFlops; }
    }

    public static Result run(Sd3Config c, int width, int height, int textTokens, int batch, DType compute) {
        int unit = VAE_SCALE * c.patchSize();
        if (width % unit != 0 || height % unit != 0 || width <= 0 || height <= 0) {
            throw new IllegalArgumentException("image size " + width + "x" + height + ": width and height must be positive multiples of " + unit);
        }
        if (batch < 1 || textTokens < 1) throw new IllegalArgumentException("batch and text tokens must be >= 1");
        long h = height / VAE_SCALE, w = width / VAE_SCALE;
        try (Sd3Transformer model = Sd3Transformer.meta(c, compute); PointerScope scope = new PointerScope(); Device meta = new Device("meta")) {
            TensorOptions onMeta = new TensorOptions(compute.scalarType()).device(new DeviceOptional(meta));
            Tensor latents = empty(new long[] {batch, c.inChannels(), h, w}, onMeta, new MemoryFormatOptional());
            Tensor text = empty(new long[] {batch, textTokens, c.jointAttentionDim()}, onMeta, new MemoryFormatOptional());
            Tensor pooled = empty(new long[] {batch, c.pooledProjectionDim()}, onMeta, new MemoryFormatOptional());
            Tensor t = empty(new long[] {batch}, onMeta, new MemoryFormatOptional());
            Tensor delta = empty(new long[] {1, c.innerDim()}, onMeta, new MemoryFormatOptional());
            long[] out;
            try (ModulationGuidance g = ModulationGuidance.builder()
                    .term(Tensors.keep(delta), 2.0, LayerSchedule.from(Math.min(2, c.numGuidedBlocks() - 1))).build();
                 OpCounter.Recording r = OpCounter.record()) {
                Tensor o = model.forward(latents, text, pooled, t, g, 0);
                out = Tensors.shape(o);
                o.close();
                long[] expected = {batch, c.outChannels(), h, w};
                if (!Arrays.equals(out, expected)) {
                    throw new IllegalStateException("dry run produced " + Arrays.toString(out) + ", expected " + Arrays.toString(expected));
                }
                long p = c.patchSize();
                return new Result(c, out, (h / p) * (w / p), textTokens, batch, r.linearFlops(), r.linears().size(), r.attentionFlops(),
                        r.attentions().size());
            }
        }
    }
}
