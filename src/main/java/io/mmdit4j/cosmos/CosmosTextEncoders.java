package io.mmdit4j.cosmos;

import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.text.TokenIds;
import io.mmdit4j.text.clip.ClipTextModel;
import io.mmdit4j.text.clip.ClipTokenizer;
import io.mmdit4j.text.t5.T5Encoder;
import io.mmdit4j.text.t5.T5Tokenizer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.LongOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.bytedeco.pytorch.global.torch.repeat_interleave;

/**
 * COSMOS's text conditioning as the modulation-guidance reference computes it ({@code utils.py}): the T5 states of the
 * prompt at {@code max_sequence_length} tokens (512), encoded <em>with</em> the attention mask, then every row past the
 * prompt's tokens set to zero and no mask passed on ({@code get_T5_prompt_embeds}); and the CLIP-L pooler output at 77 tokens
 * ({@code get_clip_pooled_prompt_embeds}, FLUX.1-schnell's CLIP-L), which the pooled-CLIP adapter embeds and guidance
 * directions go through.
 */
public final class CosmosTextEncoders implements AutoCloseable {
    private final T5Tokenizer t5Tokenizer;
    private final T5Encoder t5;
    private final ClipTokenizer clipTokenizer;
    private final ClipTextModel clip;

    /**
     * @param text   [B·n, L, d_t5] T5 states, rows past each prompt zero
     * @param pooled [B·n, d_clip] CLIP pooler output
     */
    public record Embeddings(Tensor text, Tensor pooled) implements AutoCloseable {
        @Override
        public void close() {
            Native.release(text);
            Native.release(pooled);
        }
    }

    public CosmosTextEncoders(T5Tokenizer t5Tokenizer, T5Encoder t5, ClipTokenizer clipTokenizer, ClipTextModel clip) {
        this.t5Tokenizer = t5Tokenizer;
        this.t5 = t5;
        this.clipTokenizer = clipTokenizer;
        this.clip = clip;
    }

    /**
     * @param t5Folder   a folder with {@code tokenizer/} and {@code text_encoder/} (the Cosmos-Predict2 folder: T5-11B)
     * @param clipFolder a folder with {@code tokenizer/} and {@code text_encoder/} holding CLIP-L (FLUX.1-schnell's), or the
     *                   Cosmos folder itself when it has {@code tokenizer_2/} and {@code text_encoder_2/}
     */
    public static CosmosTextEncoders load(Path t5Folder, Path clipFolder, DType dtype) {
        return load(t5Folder, clipFolder, dtype, io.mmdit4j.runtime.DeviceSpec.CPU);
    }

    /** {@link #load(Path, Path, DType)} with T5 and CLIP on {@code device} (the transformer's): their outputs stay there. */
    public static CosmosTextEncoders load(Path t5Folder, Path clipFolder, DType dtype, io.mmdit4j.runtime.DeviceSpec device) {
        require(t5Folder, "tokenizer", "text_encoder", "the T5 of a Cosmos-Predict2 folder");
        String[] clipParts = clipParts(clipFolder);
        if (clipParts == null) {
            throw new ModelFormatException(clipFolder + ": no CLIP-L text encoder (expected text_encoder_2/ + tokenizer_2/ or text_encoder/ + "
                    + "tokenizer/, e.g. a FLUX.1-schnell folder)");
        }
        ClipTextModel clip = ClipTextModel.load(clipFolder.resolve(clipParts[1]), dtype, device);
        try {
            T5Encoder t5 = T5Encoder.load(t5Folder.resolve("text_encoder"), dtype, device);
            try {
                return new CosmosTextEncoders(T5Tokenizer.fromFolder(t5Folder.resolve("tokenizer")), t5,
                        ClipTokenizer.fromFolder(clipFolder.resolve(clipParts[0])), clip);
            } catch (RuntimeException e) {
                t5.close();
                throw e;
            }
        } catch (RuntimeException e) {
            clip.close();
            throw e;
        }
    }

    /** {tokenizer, text_encoder} sub-folders holding CLIP in {@code folder}, or null. */
    static String[] clipParts(Path folder) {
        if (folder == null) return null;
        for (String[] p : new String[][] {{"tokenizer_2", "text_encoder_2"}, {"tokenizer", "text_encoder"}}) {
            Path config = folder.resolve(p[1]).resolve("config.json");
            if (Files.isDirectory(folder.resolve(p[0])) && Files.isRegularFile(config)
                    && io.mmdit4j.io.JsonConfigs.readObject(config).path("model_type").asText("").startsWith("clip")) {
                return p;
            }
        }
        return null;
    }

    private static void require(Path folder, String tokenizer, String encoder, String what) {
        if (!Files.isDirectory(folder.resolve(tokenizer)) || !Files.isDirectory(folder.resolve(encoder))) {
            throw new ModelFormatException(folder + ": missing '" + tokenizer + "/' or '" + encoder + "/' (" + what + ")");
        }
    }

    public int pooledDim() {
        return clip.config().hiddenSize();
    }

    public int textDim() {
        return t5.config().dModel();
    }

    /** Prompt embeddings, each prompt repeated {@code imagesPerPrompt} times (prompt-major). Caller-owned. */
    public Embeddings encode(List<String> prompts, int imagesPerPrompt, int maxSequenceLength) {
        if (imagesPerPrompt < 1) throw new IllegalArgumentException("images per prompt must be >= 1, got " + imagesPerPrompt);
        if (maxSequenceLength < 1 || maxSequenceLength > 512) {
            throw new IllegalArgumentException("max_sequence_length must be in 1..512 (COSMOS's T5), got " + maxSequenceLength);
        }
        try (PointerScope scope = new PointerScope()) {
            Tensor[] t5In = TokenIds.batch(prompts, p -> t5Tokenizer.encode(p, maxSequenceLength));
            Tensor states;
            try (T5Encoder.Output o = t5.forward(t5In[0], t5In[1], false)) {
                // rows past the prompt's tokens are zero; no mask goes further (the reference's get_T5_prompt_embeds)
                states = o.lastHiddenState().masked_fill(t5In[1].eq(new Scalar(0)).unsqueeze(-1), new Scalar(0.0));
            }
            Tensor pooled = pooled(prompts);
            return new Embeddings(Tensors.keep(repeatRows(states, imagesPerPrompt)), Tensors.keep(repeatRows(pooled, imagesPerPrompt)));
        }
    }

    /** CLIP-L pooler outputs [B, d_clip] at 77 tokens; in the caller's scope. */
    public Tensor pooled(List<String> prompts) {
        try (ClipTextModel.Output o = clip.forward(TokenIds.ids(prompts, clipTokenizer::encode), false)) {
            return o.pooled().clone();
        }
    }

    private static Tensor repeatRows(Tensor t, int n) {
        return n == 1 ? t : repeat_interleave(t, n, new LongOptional(0), new LongOptional());
    }

    @Override
    public void close() {
        Modules.closeAll(t5, clip);
    }
}
