package io.mmdit4j.text.clip;

import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.io.StateDict;
import io.mmdit4j.nn.LayerNorm;
import io.mmdit4j.nn.Linear;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.text.TextEncoders;
import io.mmdit4j.text.TokenIds;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.InferenceMode;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.bytedeco.pytorch.global.torch.full;
import static org.bytedeco.pytorch.global.torch.gelu;
import static org.bytedeco.pytorch.global.torch.matmul;
import static org.bytedeco.pytorch.global.torch.sigmoid;
import static org.bytedeco.pytorch.global.torch.softmax;

/**
 * transformers {@code CLIPTextModel} / {@code CLIPTextModelWithProjection}: causal text transformer with
 * pre-norm layers, final layer norm, the pooled state at the first EOS and the optional projection.
 * Called as the pipelines call it: input ids only, no attention mask (padding is handled by causality).
 */
public final class ClipTextModel implements AutoCloseable {
    private static final Scalar QUICK_GELU = Native.keep(new Scalar(1.702));

    private final ClipTextConfig config;
    private final DType dtype;
    final Tensor token_embedding;    // text_model.embeddings.token_embedding.weight [V, D]
    final Tensor position_embedding; // text_model.embeddings.position_embedding.weight [P, D]
    final List<Layer> layers;        // text_model.encoder.layers.*
    final LayerNorm final_layer_norm;
    final Linear text_projection;    // null for CLIPTextModel checkpoints

    /** One encoder layer: pre-norm self-attention and MLP, each with a residual. */
    static final class Layer implements AutoCloseable {
        final LayerNorm layer_norm1, layer_norm2;
        final Linear q_proj, k_proj, v_proj, out_proj; // self_attn.*
        final Linear fc1, fc2;                         // mlp.*

        Layer(StateDict sd, String p, ClipTextConfig c, DType dtype) {
            long d = c.hiddenSize();
            layer_norm1 = LayerNorm.load(sd, p + "layer_norm1", d, c.layerNormEps(), dtype);
            q_proj = Linear.load(sd, p + "self_attn.q_proj", d, d, dtype);
            k_proj = Linear.load(sd, p + "self_attn.k_proj", d, d, dtype);
            v_proj = Linear.load(sd, p + "self_attn.v_proj", d, d, dtype);
            out_proj = Linear.load(sd, p + "self_attn.out_proj", d, d, dtype);
            layer_norm2 = LayerNorm.load(sd, p + "layer_norm2", d, c.layerNormEps(), dtype);
            fc1 = Linear.load(sd, p + "mlp.fc1", d, c.intermediateSize(), dtype);
            fc2 = Linear.load(sd, p + "mlp.fc2", c.intermediateSize(), d, dtype);
        }

        @Override
        public void close() {
            Modules.closeAll(List.of(layer_norm1, q_proj, k_proj, v_proj, out_proj, layer_norm2, fc1, fc2));
        }
    }

    /**
     * What one call returns; every tensor is owned by this object ({@link #close()} releases them).
     *
     * @param lastHiddenState [B, L, D] final-normed
     * @param hiddenStates    N+1 tensors [B, L, D]: embeddings, then each layer's output (not normed); empty unless requested
     * @param pooled          [B, D] the last hidden state at the first EOS (the pooler output)
     * @param textEmbeds      [B, projection_dim] the projected pooled state, or null without a projection
     */
    public record Output(Tensor lastHiddenState, List<Tensor> hiddenStates, Tensor pooled, Tensor textEmbeds) implements AutoCloseable {
        /** The output of layer N-1 (what SD3 uses as prompt embedding). */
        public Tensor penultimate() {
            if (hiddenStates.size() < 2) throw new IllegalStateException("hidden states were not requested");
            return hiddenStates.get(hiddenStates.size() - 2);
        }

        @Override
        public void close() {
            Native.release(lastHiddenState);
            hiddenStates.forEach(Native::release);
            Native.release(pooled);
            Native.release(textEmbeds);
        }
    }

    private ClipTextModel(ClipTextConfig config, DType dtype, Tensor tokenEmbedding, Tensor positionEmbedding, List<Layer> layers,
                          LayerNorm finalNorm, Linear projection) {
        this.config = config;
        this.dtype = dtype;
        this.token_embedding = tokenEmbedding;
        this.position_embedding = positionEmbedding;
        this.layers = layers;
        this.final_layer_norm = finalNorm;
        this.text_projection = projection;
    }

    /** Loads a transformers text-encoder folder ({@code config.json} + {@code model.safetensors} or shards). */
    public static ClipTextModel load(Path folder, DType compute) {
        return TextEncoders.load(folder, "a CLIP text encoder", ClipTextConfig::read, (sd, c) -> fromStateDict(sd, c, compute));
    }

    /** {@link #load(Path, DType)} with the weights on {@code device}: token ids are checked on the host, then moved once per call. */
    public static ClipTextModel load(Path folder, DType compute, io.mmdit4j.runtime.DeviceSpec device) {
        return TextEncoders.load(folder, "a CLIP text encoder", ClipTextConfig::read, (sd, c) -> fromStateDict(sd.onDevice(device), c, compute));
    }

    public static ClipTextModel fromStateDict(StateDict sd, ClipTextConfig c, DType compute) {
        String p = prefix(sd);
        long d = c.hiddenSize();
        return Modules.loadingScoped(built -> {
            Tensor tok = sd.take(p + "text_model.embeddings.token_embedding.weight", compute, c.vocabSize(), d);
            Tensor pos = sd.take(p + "text_model.embeddings.position_embedding.weight", compute, c.maxPositionEmbeddings(), d);
            built.add(() -> Native.release(tok));
            built.add(() -> Native.release(pos));
            List<Layer> layers = new ArrayList<>();
            for (int i = 0; i < c.numHiddenLayers(); i++) {
                Layer l = new Layer(sd, p + "text_model.encoder.layers." + i + ".", c, compute);
                layers.add(l);
                built.add(l);
            }
            LayerNorm finalNorm = LayerNorm.load(sd, p + "text_model.final_layer_norm", d, c.layerNormEps(), compute);
            built.add(finalNorm);
            Linear projection = null;
            if (sd.contains(p + "text_projection.weight")) {
                long proj = sd.shape(p + "text_projection.weight")[0];
                projection = Linear.loadNoBias(sd, p + "text_projection", d, proj, compute);
            }
            ignore(sd, p + "text_model.embeddings.position_ids");
            sd.requireAllTaken();
            return new ClipTextModel(c, compute, tok, pos, List.copyOf(layers), finalNorm, projection);
        });
    }

    /** Checkpoints saved from a wrapper carry a prefix before {@code text_model.} (e.g. SD3 single files). */
    private static String prefix(StateDict sd) {
        if (sd.isRecording()) return ""; // a parameter list (no tensors to look at): the plain names
        String anchor = "text_model.embeddings.token_embedding.weight";
        for (String k : sd.keys()) {
            if (k.endsWith(anchor)) return k.substring(0, k.length() - anchor.length());
        }
        throw new ModelFormatException(sd.origin() + ": not a CLIP text encoder: missing tensor '" + anchor + "'");
    }

    private static void ignore(StateDict sd, String key) {
        if (sd.contains(key)) sd.markIgnored(key);
    }

    public ClipTextConfig config() { return config; }
    public DType dtype() { return dtype; }
    public boolean hasProjection() { return text_projection != null; }

    /** Width of {@code text_embeds} (the text_projection's output), or 0 without a projection. */
    public int projectionDim() { return text_projection == null ? 0 : (int) text_projection.outFeatures(); }

    /**
     * @param inputIds [B, L] int64 token ids (L <= max_position_embeddings)
     * @param allHiddenStates also return the embeddings and every layer's output
     */
    public Output forward(Tensor inputIds, boolean allHiddenStates) {
        TokenIds.check(inputIds, config.vocabSize(), config.maxPositionEmbeddings());
        try (InferenceMode guard = new InferenceMode(); PointerScope scope = new PointerScope()) {
            io.mmdit4j.runtime.DeviceSpec device = io.mmdit4j.runtime.DeviceSpec.of(token_embedding);
            Tensor ids = io.mmdit4j.runtime.Transfers.to(inputIds, device, ScalarType.Long);                  // the ids go where the weights are
            long b = ids.size(0), len = ids.size(1);
            Tensor h = TextEncoders.embed(token_embedding, ids).add(position_embedding.narrow(0, 0, len).unsqueeze(0)); // [B,L,D]
            Tensor mask = io.mmdit4j.runtime.Transfers.to(causalMask(len), device);                          // [L,L], built on the host
            List<Tensor> hidden = new ArrayList<>();
            if (allHiddenStates) hidden.add(Tensors.keep(h));
            for (Layer layer : layers) {
                h = h.add(attention(layer, layer.layer_norm1.forward(h), mask));
                h = h.add(layer.fc2.forward(activation(layer.fc1.forward(layer.layer_norm2.forward(h)))));
                if (allHiddenStates) hidden.add(Tensors.keep(h));
            }
            Tensor last = final_layer_norm.forward(h);
            Tensor eosIndex = config.eosTokenId() == 2
                    ? ids.to(ScalarType.Int).argmax(new org.bytedeco.pytorch.LongOptional(-1), false)        // legacy configs: the highest id, <|endoftext|>
                    : ids.eq(new Scalar(config.eosTokenId())).to(ScalarType.Int).argmax(new org.bytedeco.pytorch.LongOptional(-1), false);
            Tensor pooled = last.is_meta() ? last.select(1, 0)                                              // shapes only: [B,D]
                    : last.index_select(1, eosIndex).diagonal(0, 0, 1).t();                                   // [B,D]: row b at eos[b]
            Tensor projected = text_projection == null ? null : Tensors.keep(text_projection.forward(pooled));
            return new Output(Tensors.keep(last), List.copyOf(hidden), Tensors.keep(pooled.contiguous()), projected);
        }
    }

    private Tensor attention(Layer l, Tensor x, Tensor mask) { // [B,L,D]
        long b = x.size(0), len = x.size(1), heads = config.numAttentionHeads(), hd = config.headDim();
        Tensor q = l.q_proj.forward(x).mul(new Scalar(Math.pow(hd, -0.5))).view(b, len, heads, hd).transpose(1, 2); // [B,H,L,hd]
        Tensor k = l.k_proj.forward(x).view(b, len, heads, hd).transpose(1, 2);
        Tensor v = l.v_proj.forward(x).view(b, len, heads, hd).transpose(1, 2);
        Tensor weights = softmax(matmul(q, k.transpose(2, 3)).add(mask), -1);                                  // [B,H,L,L]
        Tensor out = matmul(weights, v).transpose(1, 2).reshape(b, len, heads * hd);
        return l.out_proj.forward(out);
    }

    private Tensor activation(Tensor x) {
        return config.hiddenAct().equals("quick_gelu") ? x.mul(sigmoid(x.mul(QUICK_GELU))) : gelu(x);
    }

    /** Additive causal mask: 0 on and below the diagonal, the dtype's lowest value above it. */
    private Tensor causalMask(long len) {
        Tensor m = full(new long[] {len, len}, new Scalar(TextEncoders.lowest(dtype)), new TensorOptions(dtype.scalarType()));
        return m.triu(1);
    }

    @Override
    public void close() {
        Native.release(token_embedding);
        Native.release(position_embedding);
        Modules.closeAll(layers);
        Modules.closeQuietly(final_layer_norm);
        Modules.closeQuietly(text_projection);
    }
}
