package io.mmdit4j.sd3;

import io.mmdit4j.io.DiffusersFolders;
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
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.TensorVector;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.bytedeco.pytorch.global.torch.cat;
import static org.bytedeco.pytorch.global.torch.zeros;

/**
 * SD3 / SD3.5 text conditioning as {@code StableDiffusion3Pipeline.encode_prompt} computes it (MODEL-SPEC D.2):
 * <pre>
 * clip   = cat([CLIP-L hidden_states[-2], CLIP-G hidden_states[-2]], -1)     [B, 77, dL + dG]
 * clip   = zero-pad on the feature axis to the T5 width                      [B, 77, joint]
 * embeds = cat([clip, T5 last_hidden_state], dim=1)                           [B, 77 + L, joint]
 * pooled = cat([CLIP-L text_embeds, CLIP-G text_embeds], -1)                  [B, pL + pG]
 * </pre>
 * Both CLIP towers are {@code CLIPTextModelWithProjection}s run without a mask; {@code tokenizer_2} pads with
 * {@code "!"} (id 0), which matters because the padded positions' states are part of the context. Without a T5
 * encoder its part is zeros of width {@code joint_attention_dim}. Widths come from the configs.
 */
public final class Sd3TextEncoders implements AutoCloseable {
    private final ClipTokenizer tokenizerL;
    private final ClipTextModel clipL;
    private final ClipTokenizer tokenizerG;
    private final ClipTextModel clipG;
    private final T5Tokenizer t5Tokenizer; // null without text_encoder_3
    private final T5Encoder t5;            // null without text_encoder_3
    private final int jointDim;
    private final DType dtype;

    /**
     * @param promptEmbeds [B·n, 77 + L, joint] the joint-attention context
     * @param pooled       [B·n, pL + pG] the pooled (projected) CLIP vectors
     */
    public record Embeddings(Tensor promptEmbeds, Tensor pooled) implements AutoCloseable {
        @Override
        public void close() {
            Native.release(promptEmbeds);
            Native.release(pooled);
        }
    }

    /**
     * @param jointDim the context width: T5's {@code d_model}, or the transformer's {@code joint_attention_dim} without T5
     */
    public Sd3TextEncoders(ClipTokenizer tokenizerL, ClipTextModel clipL, ClipTokenizer tokenizerG, ClipTextModel clipG,
                           T5Tokenizer t5Tokenizer, T5Encoder t5, int jointDim) {
        if (!clipL.hasProjection() || !clipG.hasProjection()) {
            throw new ModelFormatException("SD3 needs CLIPTextModelWithProjection text encoders: text_projection.weight is missing in "
                    + (!clipL.hasProjection() ? "text_encoder" : "text_encoder_2"));
        }
        if ((t5 == null) != (t5Tokenizer == null)) throw new IllegalArgumentException("T5 encoder and tokenizer come together");
        if (t5 != null && t5.config().dModel() != jointDim) {
            throw new ModelFormatException("text_encoder_3 has d_model " + t5.config().dModel() + ", but the context width is " + jointDim);
        }
        int clipWidth = clipL.config().hiddenSize() + clipG.config().hiddenSize();
        if (clipWidth > jointDim) {
            throw new ModelFormatException("the CLIP states are " + clipWidth + " wide (" + clipL.config().hiddenSize() + " + "
                    + clipG.config().hiddenSize() + "), wider than the context width " + jointDim);
        }
        this.tokenizerL = tokenizerL;
        this.clipL = clipL;
        this.tokenizerG = tokenizerG;
        this.clipG = clipG;
        this.t5Tokenizer = t5Tokenizer;
        this.t5 = t5;
        this.jointDim = jointDim;
        this.dtype = clipL.dtype();
    }

    /**
     * From a diffusers SD3 folder: {@code tokenizer/}, {@code text_encoder/}, {@code tokenizer_2/}, {@code text_encoder_2/}
     * and, optionally, {@code tokenizer_3/} + {@code text_encoder_3/}.
     *
     * @param jointDimWithoutT5 the transformer's {@code joint_attention_dim}, used only when the folder has no T5
     */
    public static Sd3TextEncoders load(Path folder, DType dtype, int jointDimWithoutT5) {
        return load(folder, dtype, jointDimWithoutT5, io.mmdit4j.runtime.DeviceSpec.CPU);
    }

    /** {@link #load(Path, DType, int)} with the three encoders on {@code device} (the transformer's): their outputs stay there. */
    public static Sd3TextEncoders load(Path folder, DType dtype, int jointDimWithoutT5, io.mmdit4j.runtime.DeviceSpec device) {
        DiffusersFolders.requireParts(folder, "a diffusers SD3 folder", "tokenizer", "text_encoder", "tokenizer_2", "text_encoder_2");
        boolean hasT5 = Files.isDirectory(folder.resolve("text_encoder_3"));
        if (hasT5 && !Files.isDirectory(folder.resolve("tokenizer_3"))) {
            throw new ModelFormatException(folder + ": 'text_encoder_3/' is present but 'tokenizer_3/' is missing");
        }
        return Modules.loading(loaded -> {
            ClipTokenizer tokL = ClipTokenizer.fromFolder(folder.resolve("tokenizer"));
            ClipTokenizer tokG = ClipTokenizer.fromFolder(folder.resolve("tokenizer_2"));
            ClipTextModel l = Modules.track(loaded, ClipTextModel.load(folder.resolve("text_encoder"), dtype, device));
            ClipTextModel g = Modules.track(loaded, ClipTextModel.load(folder.resolve("text_encoder_2"), dtype, device));
            T5Tokenizer tok3 = hasT5 ? T5Tokenizer.fromFolder(folder.resolve("tokenizer_3")) : null;
            T5Encoder t5 = hasT5 ? Modules.track(loaded, T5Encoder.load(folder.resolve("text_encoder_3"), dtype, device)) : null;
            return new Sd3TextEncoders(tokL, l, tokG, g, tok3, t5, t5 != null ? t5.config().dModel() : jointDimWithoutT5);
        });
    }


    /** Width of the pooled vector: CLIP-L's plus CLIP-G's projection width (2048 for SD3). */
    public int pooledDim() {
        return clipL.projectionDim() + clipG.projectionDim();
    }

    /** Width of the joint-attention context (T5's d_model; 4096 for SD3). */
    public int jointDim() {
        return jointDim;
    }

    public boolean hasT5() {
        return t5 != null;
    }

    public DType dtype() {
        return dtype;
    }

    /**
     * {@code encode_prompt} for each prompt, each repeated {@code imagesPerPrompt} times (prompt-major, as diffusers).
     * Caller-owned.
     */
    public Embeddings encode(List<String> prompts, int imagesPerPrompt, int maxSequenceLength) {
        if (prompts == null || prompts.isEmpty()) throw new IllegalArgumentException("at least one prompt is required");
        if (imagesPerPrompt < 1) throw new IllegalArgumentException("images per prompt must be >= 1, got " + imagesPerPrompt);
        if (maxSequenceLength < 1 || maxSequenceLength > 512) {
            throw new IllegalArgumentException("max_sequence_length must be in 1..512 (SD3), got " + maxSequenceLength);
        }
        try (PointerScope scope = new PointerScope()) {
            Tensor[] pooledParts = new Tensor[2];
            Tensor clip = clipStates(prompts, pooledParts);                                        // [B, 77, dL + dG]
            long pad = jointDim - clip.size(2);
            if (pad > 0) {
                clip = cat(new TensorVector(clip, zeros(new long[] {clip.size(0), clip.size(1), pad}, options(clip))), 2); // [B, 77, joint]
            }
            Tensor t5States;                                                                        // [B, L, joint]
            if (t5 != null) {
                Tensor ids = TokenIds.ids(prompts, p -> t5Tokenizer.encode(p, maxSequenceLength));
                try (T5Encoder.Output o = t5.forward(ids, null, false)) {
                    t5States = o.lastHiddenState().to(dtype.scalarType());
                }
            } else {
                // MODEL-SPEC D.2 and current diffusers: [B, max_sequence_length, joint]; diffusers 0.32 used 77 rows here
                t5States = zeros(new long[] {prompts.size(), maxSequenceLength, jointDim}, options(clip));
            }
            Tensor embeds = cat(new TensorVector(clip, t5States), 1);                              // [B, 77 + L, joint]
            Tensor pooled = cat(new TensorVector(pooledParts[0], pooledParts[1]), 1);              // [B, pL + pG]
            return new Embeddings(Tensors.keep(repeatRows(embeds, imagesPerPrompt)), Tensors.keep(repeatRows(pooled, imagesPerPrompt)));
        }
    }

    /** The pooled vectors [B, pL + pG] of the prompts (SD3's pooled_prompt_embeds; what guidance directions use). Caller-owned. */
    public Tensor pooled(List<String> prompts) {
        if (prompts == null || prompts.isEmpty()) throw new IllegalArgumentException("at least one prompt is required");
        try (PointerScope scope = new PointerScope()) {
            Tensor l, g;
            try (ClipTextModel.Output o = clipL.forward(TokenIds.ids(prompts, tokenizerL::encode), false)) {
                l = o.textEmbeds().clone();
            }
            try (ClipTextModel.Output o = clipG.forward(TokenIds.ids(prompts, tokenizerG::encode), false)) {
                g = o.textEmbeds().clone();
            }
            return Tensors.keep(cat(new TensorVector(l, g), 1));
        }
    }

    /** The token ids each tokenizer gives a prompt: CLIP-L (77), CLIP-G (77) and T5 ({@code maxSequenceLength}, or null without T5). */
    public long[][] tokenIds(String prompt, int maxSequenceLength) {
        return new long[][] {tokenizerL.encode(prompt).ids(), tokenizerG.encode(prompt).ids(),
                t5Tokenizer == null ? null : t5Tokenizer.encode(prompt, maxSequenceLength).ids()};
    }

    /** Penultimate CLIP-L and CLIP-G states side by side; {@code pooled[0..1]} receive the projected EOS states. Scope temporaries. */
    private Tensor clipStates(List<String> prompts, Tensor[] pooled) {
        Tensor l, g;
        try (ClipTextModel.Output o = clipL.forward(TokenIds.ids(prompts, tokenizerL::encode), true)) {
            l = o.penultimate().clone();
            pooled[0] = o.textEmbeds().clone();
        }
        try (ClipTextModel.Output o = clipG.forward(TokenIds.ids(prompts, tokenizerG::encode), true)) {
            g = o.penultimate().clone();
            pooled[1] = o.textEmbeds().clone();
        }
        return cat(new TensorVector(l, g), 2);
    }

    /** The compute dtype on {@code like}'s device (the encoders'). */
    private TensorOptions options(Tensor like) {
        TensorOptions o = new TensorOptions(dtype.scalarType());
        return like.is_cpu() ? o : o.device(new org.bytedeco.pytorch.DeviceOptional(like.device()));
    }

    /** Each row {@code n} times in a row (diffusers' {@code repeat(1, n, ...).view(B·n, ...)}). */
    static Tensor repeatRows(Tensor t, int n) {
        return Tensors.repeatRows(t, n, 0);
    }

    @Override
    public void close() {
        clipL.close();
        clipG.close();
        if (t5 != null) t5.close();
    }
}
