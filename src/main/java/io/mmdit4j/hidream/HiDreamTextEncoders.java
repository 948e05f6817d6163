package io.mmdit4j.hidream;

import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Offloadable;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.text.TokenIds;
import io.mmdit4j.text.clip.ClipTextModel;
import io.mmdit4j.text.clip.ClipTokenizer;
import io.mmdit4j.text.llama.LlamaModel;
import io.mmdit4j.text.llama.LlamaTokenizer;
import io.mmdit4j.text.t5.T5Encoder;
import io.mmdit4j.text.t5.T5Tokenizer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

import static org.bytedeco.pytorch.global.torch.cat;
import static org.bytedeco.pytorch.global.torch.stack;

/**
 * HiDream-I1's four text encoders as {@code HiDreamImagePipeline.encode_prompt} runs them (diffusers 0.35):
 * <pre>
 * pooled = cat([CLIP-L(ids).text_embeds, CLIP-G(ids).text_embeds], −1)   ids: max_length min(L, 218), pooled at the first EOS
 * t5     = T5(ids, attention_mask).last_hidden_state                    max_length min(L, tokenizer_3.model_max_length)
 * llama  = stack(Llama(ids, attention_mask, output_hidden_states).hidden_states[1:])    [N, B, Ll, H]
 *          ids = [BOS, tokens, EOS padding on the right], max_length min(L, tokenizer_4.model_max_length); the padded
 *          positions are used downstream (nothing crops them)
 * </pre>
 * No chat template: the prompt is tokenised as given. Each encoder is an {@link Offloadable}: resident, or (offloaded)
 * loaded for its encode and released right after, so the text phase never holds more than one of them.
 */
public final class HiDreamTextEncoders implements AutoCloseable {
    /** The CLIP towers' maximum text length in HiDream's pipeline (its long-context CLIPs have 248 positions). */
    public static final int CLIP_MAX_LENGTH = 218;
    /** {@code encode_prompt}'s default {@code max_sequence_length}, used for guidance prompts. */
    public static final int DEFAULT_MAX_SEQUENCE_LENGTH = 128;

    /** The component folders: diffusers' {@code text_encoder}..{@code text_encoder_4} and their tokenizers. */
    public record Sources(Path clipL, Path clipLTokenizer, Path clipG, Path clipGTokenizer, Path t5, Path t5Tokenizer, Path llama,
                          Path llamaTokenizer) {
        public Sources {
            Objects.requireNonNull(llama, "llama");
            Objects.requireNonNull(llamaTokenizer, "llamaTokenizer");
        }

        /** The CLIP-L, CLIP-G and T5 parts of a diffusers HiDream folder, with the Llama model and tokenizer from elsewhere. */
        public static Sources of(Path folder, Path llama, Path llamaTokenizer) {
            return new Sources(folder.resolve("text_encoder"), folder.resolve("tokenizer"), folder.resolve("text_encoder_2"),
                    folder.resolve("tokenizer_2"), folder.resolve("text_encoder_3"), folder.resolve("tokenizer_3"), llama, llamaTokenizer);
        }

        /** Fails with a clear message naming the first missing part. */
        public void check() {
            String[][] parts = {{"text_encoder (CLIP-L)", ""}, {"tokenizer (CLIP-L)", ""}, {"text_encoder_2 (CLIP-G)", ""}, {"tokenizer_2 (CLIP-G)", ""},
                    {"text_encoder_3 (T5)", ""}, {"tokenizer_3 (T5)", ""}};
            Path[] paths = {clipL, clipLTokenizer, clipG, clipGTokenizer, t5, t5Tokenizer};
            for (int i = 0; i < paths.length; i++) {
                if (!Files.isDirectory(paths[i])) throw new ModelFormatException(paths[i] + ": missing " + parts[i][0] + " folder (expected a diffusers HiDream folder)");
            }
            if (!Files.isRegularFile(llama.resolve("config.json"))) {
                throw new ModelFormatException(llama + ": no Llama text encoder (config.json) here: HiDream needs Llama-3.1-8B-Instruct as "
                        + "text_encoder_4 (give its transformers folder with --llama DIR)");
            }
            if (!Files.isRegularFile(llamaTokenizer.resolve("tokenizer.json"))) {
                throw new ModelFormatException(llamaTokenizer + ": no tokenizer.json for the Llama text encoder (tokenizer_4): give the "
                        + "Llama-3.1-8B-Instruct folder with --llama DIR (it holds the tokenizer too)");
            }
        }
    }

    /** One request's text conditioning: T5 {@code [B, Lt, C5]}, Llama {@code [N, B, Ll, Cl]}, pooled {@code [B, P]}, owned. */
    public record Embeddings(Tensor t5, Tensor llama, Tensor pooled) implements AutoCloseable {
        @Override
        public void close() {
            Native.release(t5);
            Native.release(llama);
            Native.release(pooled);
        }
    }

    private final ClipTokenizer tokenizerL, tokenizerG;
    private final T5Tokenizer t5Tokenizer;
    private final LlamaTokenizer llamaTokenizer;
    private final Offloadable<ClipTextModel> clipL, clipG;
    private final Offloadable<T5Encoder> t5;
    private final Offloadable<LlamaModel> llama;
    private final int pooledDim, t5Dim, llamaDim, llamaStates;

    private HiDreamTextEncoders(ClipTokenizer tokenizerL, ClipTokenizer tokenizerG, T5Tokenizer t5Tokenizer, LlamaTokenizer llamaTokenizer,
                                Offloadable<ClipTextModel> clipL, Offloadable<ClipTextModel> clipG, Offloadable<T5Encoder> t5,
                                Offloadable<LlamaModel> llama, int pooledDim, int t5Dim, int llamaDim, int llamaStates) {
        this.tokenizerL = tokenizerL;
        this.tokenizerG = tokenizerG;
        this.t5Tokenizer = t5Tokenizer;
        this.llamaTokenizer = llamaTokenizer;
        this.clipL = clipL;
        this.clipG = clipG;
        this.t5 = t5;
        this.llama = llama;
        this.pooledDim = pooledDim;
        this.t5Dim = t5Dim;
        this.llamaDim = llamaDim;
        this.llamaStates = llamaStates;
    }

    /**
     * The encoders of {@code sources} in {@code dtype}; with {@code offload} none is loaded now (each loads for its encode
     * and is released after it), else all are loaded now.
     */
    public static HiDreamTextEncoders load(Sources sources, DType dtype, boolean offload) {
        sources.check();
        List<AutoCloseable> opened = new ArrayList<>();
        try {
            ClipTokenizer tokL = ClipTokenizer.fromFolder(sources.clipLTokenizer());
            ClipTokenizer tokG = ClipTokenizer.fromFolder(sources.clipGTokenizer());
            T5Tokenizer tok3 = T5Tokenizer.fromFolder(sources.t5Tokenizer());
            LlamaTokenizer tok4 = Modules.track(opened, LlamaTokenizer.fromFolder(sources.llamaTokenizer(), true));
            // widths from the configs (headers), so nothing has to load to check them against the transformer
            int pooled = clipProjection(sources.clipL()) + clipProjection(sources.clipG());
            int t5Dim = io.mmdit4j.text.t5.T5Config.read(sources.t5().resolve("config.json")).dModel();
            io.mmdit4j.text.llama.LlamaConfig lc = io.mmdit4j.text.llama.LlamaConfig.read(sources.llama().resolve("config.json"));
            Offloadable<ClipTextModel> l = Modules.track(opened, Offloadable.of("CLIP-L", () -> ClipTextModel.load(sources.clipL(), dtype), offload));
            Offloadable<ClipTextModel> g = Modules.track(opened, Offloadable.of("CLIP-G", () -> ClipTextModel.load(sources.clipG(), dtype), offload));
            Offloadable<T5Encoder> t = Modules.track(opened, Offloadable.of("T5", () -> T5Encoder.load(sources.t5(), dtype), offload));
            Offloadable<LlamaModel> m = Modules.track(opened, Offloadable.of("Llama", () -> LlamaModel.load(sources.llama(), dtype), offload));
            if (!offload) {
                for (Offloadable<ClipTextModel> c : List.of(l, g)) {
                    if (!c.acquire().hasProjection()) {
                        throw new ModelFormatException(c.name() + ": HiDream needs CLIPTextModelWithProjection text encoders (text_projection.weight is missing)");
                    }
                }
            }
            return new HiDreamTextEncoders(tokL, tokG, tok3, tok4, l, g, t, m, pooled, t5Dim, lc.hiddenSize(), lc.numHiddenLayers());
        } catch (RuntimeException e) {
            Modules.closeAll(opened);
            throw e;
        }
    }

    private static int clipProjection(Path folder) {
        int p = io.mmdit4j.text.clip.ClipTextConfig.read(folder.resolve("config.json")).projectionDim();
        if (p <= 0) throw new ModelFormatException(folder + ": HiDream needs a CLIPTextModelWithProjection (projection_dim in config.json)");
        return p;
    }

    /** Width of the pooled vector: CLIP-L's plus CLIP-G's projection width (2048 for HiDream-I1). */
    public int pooledDim() { return pooledDim; }

    /** T5's width ({@code caption_channels[0]}). */
    public int t5Dim() { return t5Dim; }

    /** Llama's width ({@code caption_channels[1]}). */
    public int llamaDim() { return llamaDim; }

    /** Llama hidden states given to the transformer: its layer count ({@code hidden_states[1:]}). */
    public int llamaStates() { return llamaStates; }

    /** The encoder parts (to release them, or to count their loads). */
    public List<Offloadable<?>> parts() { return List.of(clipL, clipG, t5, llama); }

    /** Releases every offloaded encoder now (resident ones stay). */
    public void release() {
        parts().forEach(Offloadable::release);
    }

    /**
     * {@code encode_prompt} for each prompt (no CFG), each repeated {@code imagesPerPrompt} times (prompt-major), with
     * {@code max_sequence_length = maxSequenceLength}. Owned by the caller.
     */
    public Embeddings encode(List<String> prompts, int imagesPerPrompt, int maxSequenceLength) {
        return encode(prompts, imagesPerPrompt, maxSequenceLength, null);
    }

    /**
     * As {@link #encode(List, int, int)} with the Llama token ids and mask given ({@code [B, L]} each; null: from the
     * tokenizer): for callers that tokenise themselves.
     */
    public Embeddings encode(List<String> prompts, int imagesPerPrompt, int maxSequenceLength, Tensor[] llamaIds) {
        if (prompts == null || prompts.isEmpty()) throw new IllegalArgumentException("at least one prompt is required");
        if (imagesPerPrompt < 1) throw new IllegalArgumentException("images per prompt must be >= 1, got " + imagesPerPrompt);
        if (maxSequenceLength < 1) throw new IllegalArgumentException("max_sequence_length must be >= 1, got " + maxSequenceLength);
        try (PointerScope scope = new PointerScope()) {
            Tensor pooled = pooledOf(prompts, maxSequenceLength);                                          // [B, P]
            Tensor[] t5Ids = TokenIds.batch(prompts, p -> t5Tokenizer.encode(p, Math.min(maxSequenceLength, 512)));
            Tensor t5States = t5.use(m -> {
                try (T5Encoder.Output o = m.forward(t5Ids[0], t5Ids[1], false)) {
                    return Tensors.keep(o.lastHiddenState().clone());
                }
            });
            Tensor[] ids = llamaIds != null ? llamaIds
                    : TokenIds.batch(prompts, p -> llamaTokenizer.encode(p, Math.min(maxSequenceLength, llamaTokenizer.modelMaxLength())));
            Tensor states = llama.use(m -> {
                try (LlamaModel.Output o = m.forward(ids[0], ids[1])) {
                    List<Tensor> h = o.hiddenStates();
                    return Tensors.keep(stack(new TensorVector(h.subList(1, h.size()).toArray(new Tensor[0])), 0));  // [N, B, L, H]
                }
            });
            Tensor t5r = Tensors.repeatRows(io.mmdit4j.runtime.Scopes.adopt(t5States), imagesPerPrompt, 0);
            Tensor llamaR = Tensors.repeatRows(io.mmdit4j.runtime.Scopes.adopt(states), imagesPerPrompt, 1);
            Tensor pooledR = Tensors.repeatRows(pooled, imagesPerPrompt, 0);
            return new Embeddings(Tensors.keep(t5r.contiguous()), Tensors.keep(llamaR.contiguous()), Tensors.keep(pooledR.contiguous()));
        }
    }

    /** The pooled vectors {@code [B, P]} of the prompts (what guidance directions use, at the default text length). Caller-owned. */
    public Tensor pooled(List<String> prompts) {
        try (PointerScope scope = new PointerScope()) {
            return Tensors.keep(pooledOf(prompts, DEFAULT_MAX_SEQUENCE_LENGTH));
        }
    }

    /** {@code cat([CLIP-L text_embeds, CLIP-G text_embeds])} with {@code max_length = min(L, 218)}; in the caller's scope. */
    private Tensor pooledOf(List<String> prompts, int maxSequenceLength) {
        int len = Math.min(maxSequenceLength, CLIP_MAX_LENGTH);
        Tensor l = clipPooled(clipL, TokenIds.batch(prompts, p -> tokenizerL.encode(p, len))[0]);
        Tensor g = clipPooled(clipG, TokenIds.batch(prompts, p -> tokenizerG.encode(p, len))[0]);
        return cat(new TensorVector(l, g), 1);
    }

    private static Tensor clipPooled(Offloadable<ClipTextModel> clip, Tensor ids) {
        return io.mmdit4j.runtime.Scopes.adopt(clip.use(m -> {
            if (!m.hasProjection()) {
                throw new ModelFormatException(clip.name() + ": HiDream needs CLIPTextModelWithProjection text encoders (text_projection.weight is missing)");
            }
            try (ClipTextModel.Output o = m.forward(ids, false)) {
                return Tensors.keep(o.textEmbeds().clone());
            }
        }));
    }

    /** The token ids each tokenizer gives a prompt: CLIP-L, CLIP-G, T5 and Llama, at {@code maxSequenceLength}. */
    public long[][] tokenIds(String prompt, int maxSequenceLength) {
        int clip = Math.min(maxSequenceLength, CLIP_MAX_LENGTH);
        return new long[][] {tokenizerL.encode(prompt, clip).ids(), tokenizerG.encode(prompt, clip).ids(),
                t5Tokenizer.encode(prompt, Math.min(maxSequenceLength, 512)).ids(),
                llamaTokenizer.encode(prompt, Math.min(maxSequenceLength, llamaTokenizer.modelMaxLength())).ids()};
    }

    @Override
    public void close() {
        Modules.closeAll(clipL, clipG, t5, llama, llamaTokenizer);
    }
}
