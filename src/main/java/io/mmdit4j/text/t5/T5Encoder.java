package io.mmdit4j.text.t5;

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
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.bytedeco.pytorch.global.torch.arange;
import static org.bytedeco.pytorch.global.torch.log;
import static org.bytedeco.pytorch.global.torch.matmul;
import static org.bytedeco.pytorch.global.torch.minimum;
import static org.bytedeco.pytorch.global.torch.pow;
import static org.bytedeco.pytorch.global.torch.relu;
import static org.bytedeco.pytorch.global.torch.softmax;
import static org.bytedeco.pytorch.global.torch.tanh;
import static org.bytedeco.pytorch.global.torch.where;

/**
 * transformers {@code T5EncoderModel} (v1.1: T5LayerNorm, which is {@link RmsNorm}'s math, relative position buckets shared by all
 * layers, no attention scaling, gated-GELU ({@code gelu_new}) feed-forward; the original T5's {@code relu} feed-forward
 * when the config says so). Weights of a bf16 checkpoint
 * computed in bf16 are views of the mapped file: a 4.7B-parameter encoder loads without a copy.
 */
public final class T5Encoder implements AutoCloseable {
    private final T5Config config;
    private final DType dtype;
    final Tensor shared;                     // shared.weight / encoder.embed_tokens.weight [V, d_model]
    final Tensor relative_attention_bias;    // encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight [buckets, H]
    final List<Block> block;                 // encoder.block.*
    final RmsNorm final_layer_norm;          // encoder.final_layer_norm.weight [d_model]
    private final Map<Long, Tensor> biasCache = new HashMap<>(); // position bias per sequence length

    /** One encoder block: self-attention and gated feed-forward sub-layers, each pre-normed with a residual. */
    static final class Block implements AutoCloseable {
        final RmsNorm layer_0_layer_norm;      // layer.0.layer_norm.weight
        final Linear q, k, v, o;               // layer.0.SelfAttention.*
        final RmsNorm layer_1_layer_norm;      // layer.1.layer_norm.weight
        final Linear wi_0, wi_1, wo;           // layer.1.DenseReluDense.* (gated-gelu; relu: wi_0 is 'wi', wi_1 null)

        Block(StateDict sd, String p, T5Config c, DType dtype) {
            long d = c.dModel(), inner = c.innerDim();
            layer_0_layer_norm = RmsNorm.load(sd, p + "layer.0.layer_norm.weight", d, c.layerNormEpsilon(), dtype);
            q = Linear.loadNoBias(sd, p + "layer.0.SelfAttention.q", d, inner, dtype);
            k = Linear.loadNoBias(sd, p + "layer.0.SelfAttention.k", d, inner, dtype);
            v = Linear.loadNoBias(sd, p + "layer.0.SelfAttention.v", d, inner, dtype);
            o = Linear.loadNoBias(sd, p + "layer.0.SelfAttention.o", inner, d, dtype);
            layer_1_layer_norm = RmsNorm.load(sd, p + "layer.1.layer_norm.weight", d, c.layerNormEpsilon(), dtype);
            wi_0 = Linear.loadNoBias(sd, p + (c.gated() ? "layer.1.DenseReluDense.wi_0" : "layer.1.DenseReluDense.wi"), d, c.dFf(), dtype);
            wi_1 = c.gated() ? Linear.loadNoBias(sd, p + "layer.1.DenseReluDense.wi_1", d, c.dFf(), dtype) : null;
            wo = Linear.loadNoBias(sd, p + "layer.1.DenseReluDense.wo", c.dFf(), d, dtype);
        }

        @Override
        public void close() {
            Modules.closeAll(java.util.Arrays.asList(layer_0_layer_norm, q, k, v, o, layer_1_layer_norm, wi_0, wi_1, wo));
        }
    }

    /**
     * @param lastHiddenState [B, L, d_model] after the final norm
     * @param hiddenStates    N+1 tensors when requested: embeddings, outputs of blocks 0..N-2, the final normed state
     */
    public record Output(Tensor lastHiddenState, List<Tensor> hiddenStates) implements AutoCloseable {
        @Override
        public void close() {
            Native.release(lastHiddenState);
            hiddenStates.forEach(Native::release);
        }
    }

    private T5Encoder(T5Config config, DType dtype, Tensor shared, Tensor bias, List<Block> blocks, RmsNorm finalNorm) {
        this.config = config;
        this.dtype = dtype;
        this.shared = shared;
        this.relative_attention_bias = bias;
        this.block = blocks;
        this.final_layer_norm = finalNorm;
    }

    /** Loads a transformers folder ({@code config.json} + {@code model.safetensors} or shards with an index). */
    public static T5Encoder load(Path folder, DType compute) {
        return TextEncoders.load(folder, "a T5 encoder", T5Config::read, (sd, c) -> fromStateDict(sd, c, compute));
    }

    /** {@link #load(Path, DType)} with the weights on {@code device}: token ids are checked on the host, then moved once per call. */
    public static T5Encoder load(Path folder, DType compute, io.mmdit4j.runtime.DeviceSpec device) {
        return TextEncoders.load(folder, "a T5 encoder", T5Config::read, (sd, c) -> fromStateDict(sd.onDevice(device), c, compute));
    }

    public static T5Encoder fromStateDict(StateDict sd, T5Config c, DType compute) {
        return Modules.loadingScoped(built -> {
            String embedKey = sd.contains("shared.weight") || sd.isRecording() ? "shared.weight" : "encoder.embed_tokens.weight";
            if (!sd.contains(embedKey) && !sd.isRecording()) {
                throw new ModelFormatException(sd.origin() + ": not a T5 encoder: neither 'shared.weight' nor 'encoder.embed_tokens.weight' found");
            }
            Tensor embed = sd.take(embedKey, compute, c.vocabSize(), c.dModel());
            built.add(() -> Native.release(embed));
            // The tied embedding may be stored twice; both copies are the same matrix.
            for (String tied : new String[] {"shared.weight", "encoder.embed_tokens.weight"}) sd.markIgnored(tied);
            Tensor bias = sd.take("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", compute,
                    c.relativeAttentionNumBuckets(), c.numHeads());
            built.add(() -> Native.release(bias));
            List<Block> blocks = new ArrayList<>();
            for (int i = 0; i < c.numLayers(); i++) {
                Block b = new Block(sd, "encoder.block." + i + ".", c, compute);
                blocks.add(b);
                built.add(b);
            }
            RmsNorm finalNorm = RmsNorm.load(sd, "encoder.final_layer_norm.weight", c.dModel(), c.layerNormEpsilon(), compute);
            built.add(finalNorm);
            // A full T5 checkpoint also holds a decoder; the encoder model ignores it as transformers does.
            for (String k : sd.keys()) if (k.startsWith("decoder.") || k.startsWith("lm_head.")) sd.markIgnored(k);
            sd.requireAllTaken();
            return new T5Encoder(c, compute, embed, bias, List.copyOf(blocks), finalNorm);
        });
    }

    public T5Config config() { return config; }
    public DType dtype() { return dtype; }

    /**
     * @param inputIds      [B, L] int64
     * @param attentionMask [B, L] (1 = token, 0 = padding) or null: FLUX and SD3 call T5 without a mask
     */
    public Output forward(Tensor inputIds, Tensor attentionMask, boolean allHiddenStates) {
        TokenIds.check(inputIds, config.vocabSize(), Integer.MAX_VALUE);
        if (attentionMask != null && !Arrays.equals(Tensors.shape(attentionMask), Tensors.shape(inputIds))) {
            throw new IllegalArgumentException("attention_mask has shape " + Arrays.toString(Tensors.shape(attentionMask))
                    + ", expected " + Arrays.toString(Tensors.shape(inputIds)));
        }
        try (InferenceMode guard = new InferenceMode(); PointerScope scope = new PointerScope()) {
            io.mmdit4j.runtime.DeviceSpec device = io.mmdit4j.runtime.DeviceSpec.of(shared);
            Tensor ids = io.mmdit4j.runtime.Transfers.to(inputIds, device, ScalarType.Long);                  // the ids go where the weights are
            long len = ids.size(1);
            Tensor h = TextEncoders.embed(shared, ids);                                               // [B,L,D]
            Tensor bias = positionBias(len);                                                 // [1,H,L,L]
            if (attentionMask != null) {
                // (1 - mask) * lowest: padded keys get the dtype's lowest value, as transformers' extended mask
                Tensor m = io.mmdit4j.runtime.Transfers.to(attentionMask, device, dtype.scalarType()).unsqueeze(1).unsqueeze(1);
                bias = bias.add(m.neg().add(new Scalar(1.0)).mul(new Scalar(TextEncoders.lowest(dtype))));
            }
            List<Tensor> hidden = new ArrayList<>();
            for (int i = 0; i < block.size(); i++) {
                if (allHiddenStates) hidden.add(Tensors.keep(h));
                Block b = block.get(i);
                h = h.add(attention(b, b.layer_0_layer_norm.forward(h), bias));
                Tensor x = b.layer_1_layer_norm.forward(h);
                Tensor ff = b.wi_1 != null ? geluNew(b.wi_0.forward(x)).mul(b.wi_1.forward(x)) : relu0(b.wi_0.forward(x));
                h = h.add(b.wo.forward(ff));
                if (dtype == DType.F16) h = clampFp16(h);
            }
            Tensor last = final_layer_norm.forward(h);
            if (allHiddenStates) hidden.add(Tensors.keep(last));
            return new Output(Tensors.keep(last), List.copyOf(hidden));
        }
    }

    private Tensor attention(Block b, Tensor x, Tensor bias) { // x [B,L,D] -> [B,L,D]
        long bsz = x.size(0), len = x.size(1), heads = config.numHeads(), dk = config.dKv();
        Tensor q = b.q.forward(x).view(bsz, len, heads, dk).transpose(1, 2);              // [B,H,L,dk]
        Tensor k = b.k.forward(x).view(bsz, len, heads, dk).transpose(1, 2);
        Tensor v = b.v.forward(x).view(bsz, len, heads, dk).transpose(1, 2);
        Tensor scores = matmul(q, k.transpose(3, 2)).add(bias);                           // no 1/sqrt(dk): T5 folds it into init
        Tensor weights = softmax(scores.to(ScalarType.Float), -1).to(scores.scalar_type());
        return b.o.forward(matmul(weights, v).transpose(1, 2).reshape(bsz, len, heads * dk));
    }

    /** {@code relu}; on meta (no meta kernel for relu in this build) the shape alone. */
    private static Tensor relu0(Tensor x) {
        return x.is_meta() ? x.clone() : relu(x);
    }

    /** transformers' {@code gelu_new}: the tanh approximation as separate ops (each rounded in bf16). */
    private static Tensor geluNew(Tensor x) {
        Tensor inner = x.add(pow(x, new Scalar(3.0)).mul(new Scalar(0.044715))).mul(new Scalar(Math.sqrt(2.0 / Math.PI)));
        return x.mul(new Scalar(0.5)).mul(tanh(inner).add(new Scalar(1.0)));
    }

    private static Tensor clampFp16(Tensor h) {
        double limit = 65504.0 - 1000.0;
        return h.clamp(new org.bytedeco.pytorch.ScalarOptional(new Scalar(-limit)), new org.bytedeco.pytorch.ScalarOptional(new Scalar(limit)));
    }

    /** Relative position bias [1, H, L, L], computed once per length and kept. */
    private synchronized Tensor positionBias(long len) {
        Tensor cached = biasCache.get(len);
        if (cached != null) return cached;
        Tensor bias;
        try (PointerScope scope = new PointerScope()) {
            TensorOptions i64 = new TensorOptions(ScalarType.Long);
            Tensor ctx = arange(new Scalar(len), i64).unsqueeze(1);
            Tensor mem = arange(new Scalar(len), i64).unsqueeze(0);
            Tensor buckets = io.mmdit4j.runtime.Transfers.to(bucket(mem.sub(ctx), config.relativeAttentionNumBuckets(), config.relativeAttentionMaxDistance()),
                    io.mmdit4j.runtime.DeviceSpec.of(relative_attention_bias)); // computed on the host, moved once per length (cached)
            bias = Native.keep(TextEncoders.embed(relative_attention_bias, buckets).permute(2, 0, 1).unsqueeze(0).contiguous());
        }
        biasCache.put(len, bias);
        return bias;
    }

    /** transformers' {@code _relative_position_bucket}, bidirectional, with the same float32 ops (relative = key − query). */
    public static Tensor bucket(Tensor relative, int numBuckets, int maxDistance) {
        int half = numBuckets / 2;
        Tensor buckets = relative.gt(new Scalar(0)).to(ScalarType.Long).mul(new Scalar(half));
        Tensor distance = relative.abs();
        int maxExact = half / 2;
        Tensor isSmall = distance.lt(new Scalar(maxExact));
        Tensor large = log(distance.to(ScalarType.Float).div(new Scalar((double) maxExact)))
                .div(new Scalar(Math.log((double) maxDistance / maxExact))).mul(new Scalar((double) (half - maxExact)))
                .to(ScalarType.Long).add(new Scalar(maxExact));
        large = minimum(large, large.new_full(new long[] {1}, new Scalar(half - 1)).expand_as(large));
        return buckets.add(where(isSmall, distance, large));
    }

    @Override
    public synchronized void close() {
        Native.release(shared);
        Native.release(relative_attention_bias);
        Modules.closeAll(block);
        final_layer_norm.close();
        biasCache.values().forEach(Native::release);
        biasCache.clear();
    }
}
