package io.mmdit4j.text.llama;

import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.io.StateDict;
import io.mmdit4j.nn.Linear;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.nn.RmsNorm;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.text.TextEncoders;
import io.mmdit4j.text.TokenIds;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.InferenceMode;
import org.bytedeco.pytorch.LongOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.bytedeco.pytorch.global.torch.matmul;
import static org.bytedeco.pytorch.global.torch.ones;
import static org.bytedeco.pytorch.global.torch.repeat_interleave;
import static org.bytedeco.pytorch.global.torch.silu;
import static org.bytedeco.pytorch.global.torch.softmax;

/**
 * transformers {@code LlamaModel} (the decoder stack without LM head) as text encoders call it: token embedding,
 * pre-norm decoder layers (LlamaRMSNorm, grouped-query self-attention with rotate-half RoPE under a causal plus
 * padding mask, SwiGLU MLP), final RMSNorm. Attention follows the eager path: {@code QKᵀ/√Dh + mask}, softmax in fp32,
 * probabilities cast back. Position ids are {@code 0..L-1} whatever the mask, as in transformers 4.38.
 *
 * <p>Text encoders read an intermediate hidden state ({@link #hiddenState}); the layers after it are neither run nor,
 * when loaded with a layer limit, loaded.
 */
public final class LlamaModel implements AutoCloseable {
    private final LlamaConfig config;
    private final DType dtype;
    final Tensor embed_tokens;       // embed_tokens.weight [V, D]
    final List<DecoderLayer> layers; // layers.* (the first loadedLayers of them)
    final RmsNorm norm;              // norm.weight [D], null when not all layers are loaded

    /** One decoder layer: {@code h += Attn(RMSNorm(h))}, {@code h += MLP(RMSNorm(h))}. */
    static final class DecoderLayer implements AutoCloseable {
        final RmsNorm input_layernorm, post_attention_layernorm;
        final Linear q_proj, k_proj, v_proj, o_proj; // self_attn.*
        final Linear gate_proj, up_proj, down_proj;  // mlp.*

        DecoderLayer(StateDict sd, String p, LlamaConfig c, DType dtype) {
            long d = c.hiddenSize(), q = (long) c.numAttentionHeads() * c.headDim(), kv = (long) c.numKeyValueHeads() * c.headDim();
            input_layernorm = RmsNorm.load(sd, p + "input_layernorm.weight", d, c.rmsNormEps(), dtype);
            q_proj = linear(sd, p + "self_attn.q_proj", d, q, c.attentionBias(), dtype);
            k_proj = linear(sd, p + "self_attn.k_proj", d, kv, c.attentionBias(), dtype);
            v_proj = linear(sd, p + "self_attn.v_proj", d, kv, c.attentionBias(), dtype);
            o_proj = linear(sd, p + "self_attn.o_proj", q, d, c.attentionBias(), dtype);
            post_attention_layernorm = RmsNorm.load(sd, p + "post_attention_layernorm.weight", d, c.rmsNormEps(), dtype);
            gate_proj = linear(sd, p + "mlp.gate_proj", d, c.intermediateSize(), c.mlpBias(), dtype);
            up_proj = linear(sd, p + "mlp.up_proj", d, c.intermediateSize(), c.mlpBias(), dtype);
            down_proj = linear(sd, p + "mlp.down_proj", c.intermediateSize(), d, c.mlpBias(), dtype);
        }

        private static Linear linear(StateDict sd, String prefix, long in, long out, boolean bias, DType dtype) {
            return bias ? Linear.load(sd, prefix, in, out, dtype) : Linear.loadNoBias(sd, prefix, in, out, dtype);
        }

        @Override
        public void close() {
            Modules.closeAll(List.of(input_layernorm, q_proj, k_proj, v_proj, o_proj, post_attention_layernorm, gate_proj, up_proj, down_proj));
        }
    }

    /** {@code output_hidden_states}: N+1 tensors [B, L, D] (embeddings, outputs of layers 1..N-1, final RMSNorm of layer N's output), owned. */
    public record Output(List<Tensor> hiddenStates) implements AutoCloseable {
        /** {@code hidden_states[-(k+1)]}. */
        public Tensor fromEnd(int k) {
            return hiddenStates.get(hiddenStates.size() - 1 - k);
        }

        @Override
        public void close() {
            hiddenStates.forEach(Native::release);
        }
    }

    private LlamaModel(LlamaConfig config, DType dtype, Tensor embedTokens, List<DecoderLayer> layers, RmsNorm norm) {
        this.config = config;
        this.dtype = dtype;
        this.embed_tokens = embedTokens;
        this.layers = layers;
        this.norm = norm;
    }

    /** Loads a transformers folder ({@code config.json} + {@code model.safetensors} or shards with an index), all layers. */
    public static LlamaModel load(Path folder, DType compute) {
        return load(folder, compute, -1);
    }

    /**
     * As {@link #load(Path, DType)}, keeping only the first {@code layersToLoad} decoder layers (-1: all). HunyuanVideo reads
     * {@code hidden_states[-3]}, so it needs {@code num_hidden_layers - 2} layers and no final norm.
     */
    public static LlamaModel load(Path folder, DType compute, int layersToLoad) {
        return TextEncoders.load(folder, "a Llama text encoder", LlamaConfig::read, (sd, c) -> fromStateDict(sd, c, compute, layersToLoad));
    }

    /** {@link #load(Path, DType, int)} with the weights on {@code device}: ids and mask are checked on the host, then moved once per call. */
    public static LlamaModel load(Path folder, DType compute, int layersToLoad, io.mmdit4j.runtime.DeviceSpec device) {
        return TextEncoders.load(folder, "a Llama text encoder", LlamaConfig::read,
                (sd, c) -> fromStateDict(sd.onDevice(device), c, compute, layersToLoad));
    }

    public static LlamaModel fromStateDict(StateDict sd, LlamaConfig c, DType compute, int layersToLoad) {
        if (layersToLoad < -1 || layersToLoad > c.numHiddenLayers()) {
            throw new IllegalArgumentException("layersToLoad must be -1 (all) or 0.." + c.numHiddenLayers() + ", got " + layersToLoad);
        }
        int keep = layersToLoad < 0 ? c.numHiddenLayers() : layersToLoad;
        String p = prefix(sd);
        c.checkAgainst(sd, p);
        return Modules.loadingScoped(built -> {
            Tensor embed = sd.take(p + "embed_tokens.weight", compute, c.vocabSize(), c.hiddenSize());
            built.add(() -> Native.release(embed));
            List<DecoderLayer> layers = new ArrayList<>();
            for (int i = 0; i < keep; i++) {
                DecoderLayer l = new DecoderLayer(sd, p + "layers." + i + ".", c, compute);
                layers.add(l);
                built.add(l);
            }
            RmsNorm norm = null;
            if (keep == c.numHiddenLayers()) {
                norm = RmsNorm.load(sd, p + "norm.weight", c.hiddenSize(), c.rmsNormEps(), compute);
                built.add(norm);
            }
            for (String k : sd.keys()) {
                // Not part of the text stack: an LM head or a LLaVA vision tower and projector; old checkpoints' RoPE buffers;
                // and the layers (and final norm) after the last one asked for.
                if (!k.startsWith(p) || k.endsWith(".rotary_emb.inv_freq") || (keep < c.numHiddenLayers() && unusedTail(k.substring(p.length()), keep))) {
                    sd.markIgnored(k);
                }
            }
            sd.requireAllTaken();
            return new LlamaModel(c, compute, embed, List.copyOf(layers), norm);
        });
    }

    private static boolean unusedTail(String key, int keep) {
        if (key.startsWith("norm.")) return true;
        if (!key.startsWith("layers.")) return false;
        int dot = key.indexOf('.', 7);
        try {
            return dot > 7 && Integer.parseInt(key.substring(7, dot)) >= keep;
        } catch (NumberFormatException e) {
            return false;
        }
    }

    /**
     * The key prefix before {@code embed_tokens.weight}: none for a {@code LlamaModel} folder (HunyuanVideo's
     * {@code text_encoder/}), {@code model.} for a causal-LM checkpoint, {@code language_model.model.} for LLaVA.
     */
    static String prefix(StateDict sd) {
        String anchor = "embed_tokens.weight";
        for (String candidate : new String[] {"", "model.", "language_model.model.", "model.language_model."}) {
            if (sd.contains(candidate + anchor)) return candidate;
        }
        for (String k : sd.keys()) {
            if (k.endsWith("." + anchor) && sd.contains(k.substring(0, k.length() - anchor.length()) + "layers.0.input_layernorm.weight")) {
                return k.substring(0, k.length() - anchor.length());
            }
        }
        throw new ModelFormatException(sd.origin() + ": not a Llama checkpoint: no tensor 'embed_tokens.weight' (also looked under "
                + "'model.' and 'language_model.model.')");
    }

    public LlamaConfig config() { return config; }
    public DType dtype() { return dtype; }
    public int loadedLayers() { return layers.size(); }

    /** Every hidden state, as {@code output_hidden_states=True} returns them; needs all layers loaded. */
    public Output forward(Tensor inputIds, Tensor attentionMask) {
        requireLayers(config.numHiddenLayers(), true);
        validate(inputIds, attentionMask);
        try (InferenceMode guard = new InferenceMode(); PointerScope scope = new PointerScope()) {
            List<Tensor> hidden = new ArrayList<>();
            try {
                hidden.add(run(inputIds, attentionMask, config.numHiddenLayers(), true, hidden));
                return new Output(List.copyOf(hidden));
            } catch (RuntimeException e) {
                hidden.forEach(Native::release);
                throw e;
            }
        }
    }

    /**
     * {@code hidden_states[-(skipLayers + 1)]} [B, L, D], owned by the caller: the output of layer {@code N - skipLayers}
     * (no final norm) for {@code skipLayers >= 1}, the final-normed output for 0. Only the layers up to it run.
     *
     * @param attentionMask [B, L] integer or bool, 1 = token, 0 = padding; null = no padding
     */
    public Tensor hiddenState(Tensor inputIds, Tensor attentionMask, int skipLayers) {
        int n = config.numHiddenLayers();
        if (skipLayers < 0 || skipLayers > n) {
            throw new IllegalArgumentException("skipLayers must be in 0.." + n + " (hidden_states has " + (n + 1) + " entries), got " + skipLayers);
        }
        requireLayers(n - skipLayers, skipLayers == 0);
        validate(inputIds, attentionMask);
        try (InferenceMode guard = new InferenceMode(); PointerScope scope = new PointerScope()) {
            return run(inputIds, attentionMask, n - skipLayers, skipLayers == 0, null);
        }
    }

    private void requireLayers(int count, boolean finalNorm) {
        if (count > layers.size() || (finalNorm && norm == null)) {
            throw new IllegalStateException("this model was loaded with " + layers.size() + " of " + config.numHiddenLayers()
                    + " layers; the requested hidden state needs " + count + (finalNorm ? " and the final norm" : ""));
        }
    }

    private void validate(Tensor inputIds, Tensor attentionMask) {
        TokenIds.check(inputIds, config.vocabSize(), config.maxPositionEmbeddings());
        if (attentionMask == null) return;
        if (attentionMask.isNull()) throw new IllegalArgumentException("attention_mask is a released tensor");
        if (!Arrays.equals(Tensors.shape(attentionMask), Tensors.shape(inputIds))) {
            throw new IllegalArgumentException("attention_mask has shape " + Arrays.toString(Tensors.shape(attentionMask))
                    + ", expected the shape of input_ids " + Arrays.toString(Tensors.shape(inputIds)));
        }
        if (Tensors.dtype(attentionMask).isFloatingPoint()) {
            throw new IllegalArgumentException("attention_mask must be integer or bool (1 = token, 0 = padding), got " + Tensors.dtype(attentionMask).torchName());
        }
        try (PointerScope scope = new PointerScope()) {
            Tensor m = attentionMask.to(ScalarType.Long);
            long min = m.min().item_long(), max = m.max().item_long();
            if (min < 0 || max > 1) throw new IllegalArgumentException("attention_mask must hold only 0 and 1, found values in [" + min + ", " + max + "]");
        }
    }

    /**
     * Embeddings, then {@code count} layers (each in its own scope so that a layer's temporaries die with it); collects the
     * embeddings and each layer's input when {@code collect} is given. Returns an owned tensor.
     */
    private Tensor run(Tensor inputIds, Tensor attentionMask, int count, boolean finalNorm, List<Tensor> collect) {
        io.mmdit4j.runtime.DeviceSpec device = io.mmdit4j.runtime.DeviceSpec.of(embed_tokens);
        Tensor ids = io.mmdit4j.runtime.Transfers.to(inputIds, device, ScalarType.Long);                      // the ids go where the weights are
        long b = ids.size(0), len = ids.size(1);
        Tensor h = TextEncoders.embed(embed_tokens, ids);                                     // [B,L,D]
        Tensor mask = io.mmdit4j.runtime.Transfers.to(additiveMask(attentionMask, b, len), device);          // [B or 1,1,L,L], built on the host
        Tensor owned = null;
        try (LlamaRotaryEmbedding rope = LlamaRotaryEmbedding.build(config, len, dtype, device)) {
            for (int i = 0; i < count; i++) {
                if (collect != null) collect.add(Tensors.keep(h));
                Tensor next;
                try (PointerScope layerScope = new PointerScope()) {
                    next = Tensors.keep(layer(layers.get(i), h, mask, rope));
                }
                Native.release(owned);
                owned = next;
                h = next;
            }
            Tensor out = finalNorm ? norm.forwardCastToInput(h) : h;
            return Tensors.keep(out);
        } finally {
            Native.release(owned);
        }
    }

    private Tensor layer(DecoderLayer l, Tensor h, Tensor mask, LlamaRotaryEmbedding rope) {
        h = h.add(attention(l, l.input_layernorm.forwardCastToInput(h), mask, rope));
        Tensor x = l.post_attention_layernorm.forwardCastToInput(h);
        return h.add(l.down_proj.forward(silu(l.gate_proj.forward(x)).mul(l.up_proj.forward(x))));
    }

    private Tensor attention(DecoderLayer l, Tensor x, Tensor mask, LlamaRotaryEmbedding rope) { // [B,L,D] -> [B,L,D]
        long b = x.size(0), len = x.size(1), heads = config.numAttentionHeads(), kvHeads = config.numKeyValueHeads(), hd = config.headDim();
        Tensor q = l.q_proj.forward(x).view(b, len, heads, hd).transpose(1, 2);   // [B,H,L,Dh]
        Tensor k = l.k_proj.forward(x).view(b, len, kvHeads, hd).transpose(1, 2); // [B,Hkv,L,Dh]
        Tensor v = l.v_proj.forward(x).view(b, len, kvHeads, hd).transpose(1, 2);
        q = rope.apply(q);
        k = rope.apply(k);
        if (config.groups() > 1) { // repeat_kv: query head h reads key/value head h / groups
            k = repeat_interleave(k, config.groups(), new LongOptional(1), new LongOptional());
            v = repeat_interleave(v, config.groups(), new LongOptional(1), new LongOptional());
        }
        Tensor scores = matmul(q, k.transpose(2, 3)).div(new Scalar(Math.sqrt(hd))).add(mask);      // [B,H,L,L]
        Tensor weights = softmax(scores, -1, new ScalarTypeOptional(ScalarType.Float)).to(q.scalar_type());
        Tensor out = matmul(weights, v).transpose(1, 2).contiguous().reshape(b, len, heads * hd); // [B,L,H·Dh]
        return l.o_proj.forward(out);
    }

    /** transformers' 4D mask: 0 where query i may see key j (j <= i and j not padding), the dtype's lowest value elsewhere. */
    private Tensor additiveMask(Tensor attentionMask, long b, long len) {
        Tensor blocked = ones(new long[] {len, len}, new TensorOptions(ScalarType.Bool)).triu(1);   // [L,L] causal
        if (attentionMask != null) {
            Tensor padded = attentionMask.to(ScalarType.Long).eq(new Scalar(0)).view(b, 1, 1, len);  // [B,1,1,L]
            blocked = blocked.logical_or(padded);                                                   // [B,1,L,L]
        } else {
            blocked = blocked.view(1, 1, len, len);
        }
        return blocked.to(dtype.scalarType()).masked_fill(blocked, new Scalar(TextEncoders.lowest(dtype)));
    }

    @Override
    public void close() {
        Native.release(embed_tokens);
        Modules.closeAll(layers);
        Modules.closeQuietly(norm);
    }
}
