package io.mmdit4j.text.llama;

import io.mmdit4j.io.DiffusersFolders;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.text.TokenIds;
import io.mmdit4j.text.clip.ClipTextModel;
import io.mmdit4j.text.clip.ClipTokenizer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.InferenceMode;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.nio.file.Path;
import java.util.List;
import java.util.Objects;


/**
 * HunyuanVideo's text conditioning as {@code HunyuanVideoPipeline.encode_prompt} computes it (spec E.2):
 * <ul>
 *   <li>LLM: each prompt wrapped in the chat {@link PromptTemplate}, tokenised to {@code maxSequenceLength + crop_start}
 *       (right padding and truncation), run through the Llama text tower with its attention mask;
 *       {@code hidden_states[-(skip + 1)]} (skip 2: the output of layer N-2, no final norm), then the first
 *       {@code crop_start} template positions dropped from states and mask → {@code [B, maxSequenceLength, H]} and
 *       {@code [B, maxSequenceLength]};</li>
 *   <li>CLIP-L: the {@code pooler_output} of the same prompts at 77 tokens → {@code [B, 768]}, the adaLN text input.</li>
 * </ul>
 */
public final class HunyuanPromptEncoder implements AutoCloseable {
    /** diffusers' {@code num_hidden_layers_to_skip} default: the hidden state two layers before the end. */
    public static final int HIDDEN_STATE_SKIP_LAYER = 2;
    public static final int DEFAULT_MAX_SEQUENCE_LENGTH = 256;

    /**
     * A prompt template: {@code template} with one {@code {}} (Python {@code str.format}) and the number of leading tokens
     * to drop, BOS plus the template text before {@code {}}.
     */
    public record PromptTemplate(String template, int cropStart) {
        /** diffusers' {@code DEFAULT_PROMPT_TEMPLATE} for HunyuanVideo (crop_start 95 with the Llama-3 tokenizer). */
        public static final PromptTemplate DEFAULT = new PromptTemplate(
                "<|start_header_id|>system<|end_header_id|>\n\nDescribe the video by detailing the following aspects: "
                        + "1. The main content and theme of the video."
                        + "2. The color, shape, size, texture, quantity, text, and spatial relationships of the objects."
                        + "3. Actions, events, behaviors temporal relationships, physical movement changes of the objects."
                        + "4. background environment, light, style and atmosphere."
                        + "5. camera angles, movements, and transitions used in the video:<|eot_id|>"
                        + "<|start_header_id|>user<|end_header_id|>\n\n{}<|eot_id|>",
                95);

        public PromptTemplate {
            Objects.requireNonNull(template, "template");
            if (cropStart < 0) throw new IllegalArgumentException("crop_start must be >= 0, got " + cropStart);
            format(template, ""); // rejects a template without exactly one {}
        }

        /**
         * A template without a fixed crop: as the pipeline does then, {@code crop_start = len(tokenize(template)) - 2}
         * (the tokens of {@code "{}"} and {@code <|eot_id|>} are not part of the prefix).
         */
        public static PromptTemplate computeCrop(String template, LlamaTokenizer tokenizer) {
            return new PromptTemplate(template, Math.max(0, tokenizer.ids(template).length - 2));
        }

        /** Python's {@code template.format(prompt)} for a template with one {@code {}} ({@code {{}} and {@code }}} escape braces). */
        public String apply(String prompt) {
            return format(template, prompt);
        }

        static String format(String template, String arg) {
            StringBuilder out = new StringBuilder();
            int fields = 0;
            for (int i = 0; i < template.length(); i++) {
                char ch = template.charAt(i);
                char next = i + 1 < template.length() ? template.charAt(i + 1) : 0;
                if (ch == '{' && next == '{') { out.append('{'); i++; }
                else if (ch == '}' && next == '}') { out.append('}'); i++; }
                else if (ch == '{' && next == '}') { out.append(arg); i++; fields++; }
                else if (ch == '{' || ch == '}') {
                    throw new IllegalArgumentException("prompt template: unsupported '" + ch + "' at index " + i + " (only {} and escaped {{ }} are allowed)");
                }
                else out.append(ch);
            }
            if (fields != 1) throw new IllegalArgumentException("prompt template must contain exactly one {}, found " + fields);
            return out.toString();
        }
    }

    /** The LLM half: {@code promptEmbeds} [B, S, H] in the text encoder's dtype, {@code attentionMask} [B, S] int64; owned. */
    public record LlamaEmbeddings(Tensor promptEmbeds, Tensor attentionMask) implements AutoCloseable {
        @Override
        public void close() {
            Native.release(promptEmbeds);
            Native.release(attentionMask);
        }
    }

    /**
     * What {@link #encode} returns, owned: {@code promptEmbeds} [B, S, H] (the transformer's {@code encoder_hidden_states}),
     * {@code attentionMask} [B, S] int64 ({@code encoder_attention_mask}), {@code pooled} [B, 768] (CLIP-L pooler output).
     */
    public record Embeddings(Tensor promptEmbeds, Tensor attentionMask, Tensor pooled) implements AutoCloseable {
        @Override
        public void close() {
            Native.release(promptEmbeds);
            Native.release(attentionMask);
            Native.release(pooled);
        }
    }

    private final LlamaTokenizer tokenizer;
    private final LlamaModel textEncoder;
    private final ClipTokenizer clipTokenizer;
    private final ClipTextModel clip;
    private final PromptTemplate template;
    private final int skipLayers;

    /** Takes ownership of both models and the Llama tokenizer. */
    public HunyuanPromptEncoder(LlamaTokenizer tokenizer, LlamaModel textEncoder, ClipTokenizer clipTokenizer, ClipTextModel clip,
                                PromptTemplate template, int skipLayers) {
        this.tokenizer = Objects.requireNonNull(tokenizer, "tokenizer");
        this.textEncoder = Objects.requireNonNull(textEncoder, "textEncoder");
        this.clipTokenizer = Objects.requireNonNull(clipTokenizer, "clipTokenizer");
        this.clip = Objects.requireNonNull(clip, "clip");
        this.template = Objects.requireNonNull(template, "template");
        int n = textEncoder.config().numHiddenLayers();
        if (skipLayers < 0 || skipLayers > n) throw new IllegalArgumentException("skipLayers must be in 0.." + n + ", got " + skipLayers);
        this.skipLayers = skipLayers;
    }

    /**
     * From a diffusers HunyuanVideo folder: {@code tokenizer/} (tokenizer.json), {@code text_encoder/} (Llama; only the
     * layers the skipped hidden state needs are loaded), {@code tokenizer_2/} and {@code text_encoder_2/} (CLIP-L).
     */
    public static HunyuanPromptEncoder load(Path folder, DType dtype) {
        return load(folder, dtype, io.mmdit4j.runtime.DeviceSpec.CPU);
    }

    /** {@link #load(Path, DType)} with Llama and CLIP on {@code device} (the transformer's): their outputs stay there. */
    public static HunyuanPromptEncoder load(Path folder, DType dtype, io.mmdit4j.runtime.DeviceSpec device) {
        DiffusersFolders.requireParts(folder, "a diffusers HunyuanVideo folder", "tokenizer", "text_encoder", "tokenizer_2", "text_encoder_2");
        ClipTokenizer clipTokenizer = ClipTokenizer.fromFolder(folder.resolve("tokenizer_2"));
        LlamaTokenizer tokenizer = LlamaTokenizer.fromFolder(folder.resolve("tokenizer"));
        LlamaModel llama = null;
        try {
            int layers = LlamaConfig.read(folder.resolve("text_encoder/config.json")).numHiddenLayers() - HIDDEN_STATE_SKIP_LAYER;
            llama = LlamaModel.load(folder.resolve("text_encoder"), dtype, Math.max(layers, 0), device);
            ClipTextModel clip = ClipTextModel.load(folder.resolve("text_encoder_2"), dtype, device);
            return new HunyuanPromptEncoder(tokenizer, llama, clipTokenizer, clip, PromptTemplate.DEFAULT, HIDDEN_STATE_SKIP_LAYER);
        } catch (RuntimeException e) {
            Modules.closeQuietly(llama);
            tokenizer.close();
            throw e;
        }
    }

    public LlamaModel textEncoder() { return textEncoder; }
    public ClipTextModel clip() { return clip; }
    public PromptTemplate template() { return template; }

    /** Width of the prompt embeddings (the transformer's {@code text_embed_dim}). */
    public int textDim() {
        return textEncoder.config().hiddenSize();
    }

    /** Width of the pooled vector (the transformer's {@code pooled_projection_dim}). */
    public int pooledDim() {
        return clip.config().hiddenSize();
    }

    /** Prompt embeddings, mask and pooled vector for each prompt (one row per prompt). Caller-owned. */
    public Embeddings encode(List<String> prompts, int maxSequenceLength) {
        return encode(prompts, 1, maxSequenceLength);
    }

    /** As {@link #encode(List, int)} with each prompt's rows repeated {@code videosPerPrompt} times (prompt-major, as diffusers). */
    public Embeddings encode(List<String> prompts, int videosPerPrompt, int maxSequenceLength) {
        if (videosPerPrompt < 1) throw new IllegalArgumentException("videos per prompt must be >= 1, got " + videosPerPrompt);
        Objects.requireNonNull(prompts, "prompts");
        if (prompts.isEmpty()) throw new IllegalArgumentException("at least one prompt is required");
        for (String p : prompts) Objects.requireNonNull(p, "prompt");
        if (maxSequenceLength < 1) throw new IllegalArgumentException("max_sequence_length must be >= 1, got " + maxSequenceLength);
        int total = maxSequenceLength + template.cropStart();
        if (total > textEncoder.config().maxPositionEmbeddings()) {
            throw new IllegalArgumentException("max_sequence_length " + maxSequenceLength + " + crop_start " + template.cropStart()
                    + " exceeds the text encoder's max_position_embeddings " + textEncoder.config().maxPositionEmbeddings());
        }
        try (PointerScope scope = new PointerScope()) {
            Tensor[] llamaIds = TokenIds.batch(prompts, p -> tokenizer.encode(template.apply(p), total));
            Tensor pooled = pooled(prompts);
            try (LlamaEmbeddings e = llamaEmbeddings(textEncoder, llamaIds[0], llamaIds[1], skipLayers, template.cropStart())) {
                return new Embeddings(Tensors.keep(repeatRows(e.promptEmbeds(), videosPerPrompt)),
                        Tensors.keep(repeatRows(e.attentionMask(), videosPerPrompt)), Tensors.keep(repeatRows(pooled, videosPerPrompt)));
            }
        }
    }

    /** CLIP-L pooled outputs [B, 768] of the prompts at 77 tokens; belongs to the caller's scope. */
    public Tensor pooled(List<String> prompts) {
        Tensor ids = TokenIds.batch(prompts, clipTokenizer::encode)[0];
        try (ClipTextModel.Output o = clip.forward(ids, false)) {
            return o.pooled().clone();
        }
    }

    /**
     * The LLM half on token ids (template already applied and tokenised): {@code hidden_states[-(skip+1)][:, cropStart:]}
     * and {@code mask[:, cropStart:]}. Owned by the caller.
     */
    public static LlamaEmbeddings llamaEmbeddings(LlamaModel model, Tensor inputIds, Tensor attentionMask, int skipLayers, int cropStart) {
        if (inputIds != null && !inputIds.isNull() && inputIds.dim() == 2 && (cropStart < 0 || cropStart >= inputIds.size(1))) {
            throw new IllegalArgumentException("crop_start " + cropStart + " leaves no tokens of the " + inputIds.size(1) + " in input_ids");
        }
        if (attentionMask == null) throw new IllegalArgumentException("attention_mask is required (the crop applies to it)");
        Tensor states = model.hiddenState(inputIds, attentionMask, skipLayers); // [B, L, H], validated inside
        try (InferenceMode guard = new InferenceMode(); PointerScope scope = new PointerScope()) {
            long len = states.size(1) - cropStart;
            Tensor embeds = states.narrow(1, cropStart, len).contiguous();        // [B, S, H]
            Tensor mask = attentionMask.to(ScalarType.Long).narrow(1, cropStart, len).contiguous(); // [B, S]
            return new LlamaEmbeddings(Tensors.keep(embeds), Tensors.keep(mask));
        } finally {
            states.close();
        }
    }

    /** Each row {@code n} times in a row (diffusers' {@code repeat(1, n, ...).view(B·n, ...)}); in the caller's scope. */
    private static Tensor repeatRows(Tensor t, int n) {
        return Tensors.repeatRows(t, n, 0);
    }

    @Override
    public void close() {
        textEncoder.close();
        clip.close();
        tokenizer.close();
    }
}
