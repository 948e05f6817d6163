package io.mmdit4j.hidream;

import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.io.ParameterShapes;
import io.mmdit4j.pipeline.SampleSize;
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
import java.util.Map;

import static org.bytedeco.pytorch.global.torch.empty;

/**
 * A real-size HiDream forward on meta tensors (shapes only, no weight or activation memory): checks every shape of a
 * configuration at an image size (after the pipeline's area-preserving resize) and counts the FLOPs of one
 * transformer call with modulation guidance on, the routed experts with balanced routing ({@code ⌈T·k/E⌉} tokens each);
 * the per-request text projections are counted apart. Also the parameter counts: total, routed experts, and the
 * parameters active for one token (the shared expert and {@code k} of the {@code E} routed ones).
 */
public final class HiDreamDryRun {
    private HiDreamDryRun() {}

    /**
     * @param imageTokens tokens of the image stream (max_seq when non-square latents are padded)
     * @param textFlops   the per-request caption projections (once per generation, not per step)
     */
    public record Result(HiDreamConfig config, int width, int height, long[] outputShape, long imageTokens, long t5Tokens, long llamaTokens,
                         int batch, double linearFlops, int gemms, double attentionFlops, int attentionCalls, double textFlops, long parameters,
                         long expertParameters, long activeParameters) {
        public double totalFlops() { return linearFlops + attentionFlops; }

        /** The joint sequence of every attention: image, T5, the last block's Llama tokens and the block's own. */
        public long sequence() { return imageTokens + t5Tokens + 2 * llamaTokens; }
    }

    /**
     * @param width      requested width (resized with {@code sampleSize}, when given, as the pipeline does)
     * @param textTokens T5 and Llama tokens ({@code max_sequence_length}, 128 by default)
     */
    public static Result run(HiDreamConfig c, int width, int height, Integer sampleSize, int textTokens, int batch, DType compute) {
        if (batch < 1 || textTokens < 1) throw new IllegalArgumentException("batch and text tokens must be >= 1");
        int[] wh = sampleSize == null ? new int[] {width, height} : new SampleSize(sampleSize).resize(width, height);
        if (wh[0] < 16 || wh[1] < 16 || wh[0] % 16 != 0 || wh[1] % 16 != 0) {
            throw new IllegalArgumentException("image size " + wh[0] + "x" + wh[1] + ": width and height must be positive multiples of 16");
        }
        long h = 2L * (wh[1] / 16), w = 2L * (wh[0] / 16);
        Map<String, long[]> shapes = HiDreamTransformer.parameterShapes(c);
        long params = ParameterShapes.count(shapes), experts = 0;
        for (Map.Entry<String, long[]> e : shapes.entrySet()) {
            if (e.getKey().contains(".experts.")) experts += Arrays.stream(e.getValue()).reduce(1, (a, b) -> a * b);
        }
        long active = params - experts + (c.numRoutedExperts() == 0 ? 0 : experts * c.numActivatedExperts() / c.numRoutedExperts());
        try (HiDreamTransformer model = HiDreamTransformer.meta(c, compute); PointerScope scope = new PointerScope(); Device meta = new Device("meta")) {
            TensorOptions onMeta = new TensorOptions(compute.scalarType()).device(new DeviceOptional(meta));
            Tensor latents = empty(new long[] {batch, c.inChannels(), h, w}, onMeta, new MemoryFormatOptional());
            Tensor t5 = empty(new long[] {batch, textTokens, c.t5Channels()}, onMeta, new MemoryFormatOptional());
            Tensor llama = empty(new long[] {c.llamaStatesNeeded(), batch, textTokens, c.llamaChannels()}, onMeta, new MemoryFormatOptional());
            Tensor pooled = empty(new long[] {batch, c.textEmbDim()}, onMeta, new MemoryFormatOptional());
            Tensor t = empty(new long[] {batch}, onMeta, new MemoryFormatOptional());
            Tensor delta = empty(new long[] {1, c.innerDim()}, onMeta, new MemoryFormatOptional());
            double textFlops;
            HiDreamTransformer.Text text;
            try (OpCounter.Recording r = OpCounter.record()) {
                text = model.text(t5, llama);
                textFlops = r.totalFlops();
            }
            try (HiDreamTransformer.Text tx = text; HiDreamTransformer.Layout layout = model.layout((int) h, (int) w, tx.textLength(), tx.llamaLength());
                 ModulationGuidance g = ModulationGuidance.builder().guideFinalNorm(true)
                         .term(Tensors.keep(delta), 3.0, LayerSchedule.from(Math.min(5, c.totalBlocks() - 1))).build();
                 OpCounter.Recording r = OpCounter.record()) {
                Tensor o = model.forward(latents, t, tx, pooled, layout, g, 0, null);
                long[] out = Tensors.shape(o);
                o.close();
                long[] expected = {batch, c.outChannels(), h, w};
                if (!Arrays.equals(out, expected)) {
                    throw new IllegalStateException("dry run produced " + Arrays.toString(out) + ", expected " + Arrays.toString(expected));
                }
                return new Result(c, wh[0], wh[1], out, layout.imageTokens(), textTokens, textTokens, batch, r.linearFlops(), r.linears().size(),
                        r.attentionFlops(), r.attentions().size(), textFlops, params, experts, active);
            }
        }
    }

    /** A text encoder's name and parameter count (as its checkpoint stores it, LM head included for Llama). */
    public record Encoder(String name, long parameters) {}

    /** HiDream-I1's text encoders at their published sizes (CLIP-L and CLIP-G with 248 positions and projections). */
    public static Encoder[] textEncoders() {
        return new Encoder[] {
                new Encoder("CLIP-L (text_encoder)", clip(49408, 768, 3072, 12, 248, 768)),
                new Encoder("CLIP-G (text_encoder_2)", clip(49408, 1280, 5120, 32, 248, 1280)),
                new Encoder("T5-XXL encoder (text_encoder_3)", t5(32128, 4096, 4096, 10240, 24, 64)),
                new Encoder("Llama-3.1-8B-Instruct (text_encoder_4)", llama(128256, 4096, 14336, 32, 32, 8, 128, true))};
    }

    static long clip(long vocab, long d, long inter, long layers, long positions, long projection) {
        long layer = 4 * (d * d + d) + 2 * 2 * d + (d * inter + inter) + (inter * d + d);
        return vocab * d + positions * d + layers * layer + 2 * d + projection * d;
    }

    static long t5(long vocab, long d, long inner, long ff, long layers, long heads) {
        long layer = 4 * d * inner + d + 3 * d * ff + d;
        return vocab * d + 32 * heads + layers * layer + d;
    }

    static long llama(long vocab, long h, long inter, long layers, long heads, long kvHeads, long headDim, boolean lmHead) {
        long layer = h * heads * headDim + 2 * h * kvHeads * headDim + heads * headDim * h + 3 * h * inter + 2 * h;
        return vocab * h * (lmHead ? 2 : 1) + layers * layer + h;
    }
}
