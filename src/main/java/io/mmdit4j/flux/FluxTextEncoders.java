package io.mmdit4j.flux;

import io.mmdit4j.io.DiffusersFolders;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.text.TokenIds;
import io.mmdit4j.text.clip.ClipTextModel;
import io.mmdit4j.text.clip.ClipTokenizer;
import io.mmdit4j.text.t5.T5Encoder;
import io.mmdit4j.text.t5.T5Tokenizer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.nio.file.Path;
import java.util.List;

import static org.bytedeco.pytorch.global.torch.zeros;

/**
 * FLUX.1's text conditioning as {@code FluxPipeline.encode_prompt} computes it: T5 states of the prompt padded
 * to {@code max_sequence_length} (no attention mask) and the CLIP-L pooled output; plus guidance directions,
 * whose prompts go through the same CLIP (the pooled path is what modulation guidance steers).
 */
public final class FluxTextEncoders implements AutoCloseable {
    private final ClipTokenizer clipTokenizer;
    private final ClipTextModel clip;
    private final T5Tokenizer t5Tokenizer;
    private final T5Encoder t5;

    /**
     * @param promptEmbeds [B·n, L, d_t5] T5 last hidden state, in the text encoder's dtype
     * @param pooled       [B·n, d_clip] CLIP pooler output
     * @param textIds      [L, 3] zeros
     */
    public record Embeddings(Tensor promptEmbeds, Tensor pooled, Tensor textIds) implements AutoCloseable {
        @Override
        public void close() {
            Native.release(promptEmbeds);
            Native.release(pooled);
            Native.release(textIds);
        }
    }

    public FluxTextEncoders(ClipTokenizer clipTokenizer, ClipTextModel clip, T5Tokenizer t5Tokenizer, T5Encoder t5) {
        this.clipTokenizer = clipTokenizer;
        this.clip = clip;
        this.t5Tokenizer = t5Tokenizer;
        this.t5 = t5;
    }

    /** From a diffusers FLUX folder: {@code tokenizer/}, {@code text_encoder/}, {@code tokenizer_2/}, {@code text_encoder_2/}. */
    public static FluxTextEncoders load(Path folder, DType dtype) {
        return load(folder, dtype, io.mmdit4j.runtime.DeviceSpec.CPU);
    }

    /** {@link #load(Path, DType)} with CLIP and T5 on {@code device} (the transformer's): their outputs stay there. */
    public static FluxTextEncoders load(Path folder, DType dtype, io.mmdit4j.runtime.DeviceSpec device) {
        DiffusersFolders.requireParts(folder, "a diffusers FLUX folder or text-encoder folder", "tokenizer", "text_encoder", "tokenizer_2", "text_encoder_2");
        ClipTextModel clip = ClipTextModel.load(folder.resolve("text_encoder"), dtype, device);
        try {
            return new FluxTextEncoders(ClipTokenizer.fromFolder(folder.resolve("tokenizer")), clip,
                    T5Tokenizer.fromFolder(folder.resolve("tokenizer_2")), T5Encoder.load(folder.resolve("text_encoder_2"), dtype, device));
        } catch (RuntimeException e) {
            clip.close();
            throw e;
        }
    }

    public int pooledDim() {
        return clip.config().hiddenSize();
    }

    public int jointDim() {
        return t5.config().dModel();
    }

    /** Prompt embeddings, each prompt repeated {@code imagesPerPrompt} times (prompt-major, as diffusers). Caller-owned. */
    public Embeddings encode(List<String> prompts, int imagesPerPrompt, int maxSequenceLength) {
        if (prompts.isEmpty()) throw new IllegalArgumentException("at least one prompt is required");
        if (imagesPerPrompt < 1) throw new IllegalArgumentException("images per prompt must be >= 1, got " + imagesPerPrompt);
        if (maxSequenceLength < 1 || maxSequenceLength > 512) {
            throw new IllegalArgumentException("max_sequence_length must be in 1..512 (FLUX), got " + maxSequenceLength);
        }
        try (PointerScope scope = new PointerScope()) {
            Tensor t5Ids = TokenIds.ids(prompts, p -> t5Tokenizer.encode(p, maxSequenceLength));
            Tensor states;
            try (T5Encoder.Output o = t5.forward(t5Ids, null, false)) {
                states = repeatRows(o.lastHiddenState(), imagesPerPrompt);
            }
            Tensor pooled = repeatRows(pooled(prompts), imagesPerPrompt);
            Tensor textIds = zeros(new long[] {maxSequenceLength, 3}, new TensorOptions(ScalarType.Float));
            return new Embeddings(Tensors.keep(states), Tensors.keep(pooled), Tensors.keep(textIds));
        }
    }

    /** CLIP pooled outputs [B, d_clip] of the prompts (FLUX's pooled_prompt_embeds). Belongs to the caller's scope. */
    public Tensor pooled(List<String> prompts) {
        Tensor clipIds = TokenIds.ids(prompts, clipTokenizer::encode);
        try (ClipTextModel.Output o = clip.forward(clipIds, false)) {
            return o.pooled().clone();
        }
    }

    /** A modulation-guidance direction {@code TextMLP(CLIP(pos)) − TextMLP(CLIP(neg))}, [1, D], owned by the caller. */
    public Tensor direction(FluxTransformer transformer, String pos, String neg) {
        try (PointerScope scope = new PointerScope()) {
            return transformer.guidanceDelta(pooled(List.of(pos)), pooled(List.of(neg)));
        }
    }

    /** Each row {@code n} times in a row (diffusers' {@code repeat(1, n, ...).view(B·n, ...)}). */
    static Tensor repeatRows(Tensor t, int n) {
        return n == 1 ? t.clone() : Tensors.repeatRows(t, n, 0);
    }

    @Override
    public void close() {
        clip.close();
        t5.close();
    }
}
