package io.mmdit4j.text.llama;

import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Native;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch.ScalarType;

import static org.bytedeco.pytorch.global.torch.arange;
import static org.bytedeco.pytorch.global.torch.cat;
import static org.bytedeco.pytorch.global.torch.outer;
import static org.bytedeco.pytorch.global.torch.pow;
import static org.bytedeco.pytorch.global.torch.where;

/**
 * transformers' {@code LlamaRotaryEmbedding} with the "rotate half" convention (channel {@code i} pairs with
 * {@code i + Dh/2}, unlike the interleaved pairs of {@link io.mmdit4j.nn.Rope}): {@code inv_freq = 1/θ^(2k/Dh)} and the angles
 * in fp32, {@code cos/sin} of {@code cat(freqs, freqs)} cast to the activations' dtype, then
 * {@code x·cos + rotate_half(x)·sin} in that dtype.
 */
public final class LlamaRotaryEmbedding implements AutoCloseable {
    private final Tensor cos; // [L, Dh] in the model dtype
    private final Tensor sin; // [L, Dh]

    private LlamaRotaryEmbedding(Tensor cos, Tensor sin) {
        this.cos = cos;
        this.sin = sin;
    }

    /** The table for positions {@code 0..length-1} (LlamaModel's default {@code position_ids}), in {@code dtype}. */
    public static LlamaRotaryEmbedding build(LlamaConfig c, long length, DType dtype) {
        return build(c, length, dtype, io.mmdit4j.runtime.DeviceSpec.CPU);
    }

    /** {@link #build(LlamaConfig, long, DType)} computed on the host and placed on {@code device}. */
    public static LlamaRotaryEmbedding build(LlamaConfig c, long length, DType dtype, io.mmdit4j.runtime.DeviceSpec device) {
        try (PointerScope scope = new PointerScope()) {
            Tensor invFreq = inverseFrequencies(c);                                   // [Dh/2] fp32
            Tensor pos = arange(new Scalar(length), new TensorOptions(ScalarType.Long)).to(ScalarType.Float);
            if (c.ropeScaling() != null && c.ropeScaling().type().equals("linear")) {
                pos = pos.div(new Scalar(c.ropeScaling().factor()));                 // LlamaLinearScalingRotaryEmbedding
            }
            Tensor freqs = outer(pos, invFreq);                                        // [L, Dh/2] fp32
            Tensor emb = cat(new TensorVector(freqs, freqs), -1);                      // [L, Dh]
            return new LlamaRotaryEmbedding(Native.keep(io.mmdit4j.runtime.Transfers.to(emb.cos(), device, dtype.scalarType())),
                    Native.keep(io.mmdit4j.runtime.Transfers.to(emb.sin(), device, dtype.scalarType())));
        }
    }

    /** {@code 1 / θ^(arange(0, Dh, 2) / Dh)} in fp32, with the llama3 per-frequency rescaling when configured. */
    static Tensor inverseFrequencies(LlamaConfig c) {
        int dim = c.headDim();
        Tensor exponent = arange(new Scalar(0), new Scalar(dim), new Scalar(2), new TensorOptions(ScalarType.Long))
                .to(ScalarType.Float).div(new Scalar((double) dim));
        Tensor invFreq = pow(new Scalar(c.ropeTheta()), exponent).reciprocal();
        LlamaConfig.RopeScaling s = c.ropeScaling();
        if (s == null || !s.type().equals("llama3")) return invFreq;
        // transformers' _compute_llama3_parameters: long wavelengths are divided by `factor`, short ones kept,
        // the band in between interpolated smoothly.
        double oldContext = s.originalMaxPositionEmbeddings();
        double lowFreqWavelen = oldContext / s.lowFreqFactor(), highFreqWavelen = oldContext / s.highFreqFactor();
        Tensor wavelen = invFreq.reciprocal().mul(new Scalar(2 * Math.PI));
        Tensor scaled = where(wavelen.gt(new Scalar(lowFreqWavelen)), invFreq.div(new Scalar(s.factor())), invFreq);
        Tensor smooth = wavelen.reciprocal().mul(new Scalar(oldContext)).sub(new Scalar(s.lowFreqFactor()))
                .div(new Scalar(s.highFreqFactor() - s.lowFreqFactor()));
        Tensor smoothed = smooth.neg().add(new Scalar(1.0)).mul(scaled).div(new Scalar(s.factor())).add(smooth.mul(scaled));
        Tensor medium = wavelen.lt(new Scalar(highFreqWavelen)).logical_not().logical_and(wavelen.gt(new Scalar(lowFreqWavelen)).logical_not());
        return where(medium, smoothed, scaled);
    }

    public long length() {
        return cos.size(0);
    }

    public Tensor cos() { return cos; }
    public Tensor sin() { return sin; }

    /** {@code x·cos + rotate_half(x)·sin} for {@code x [B, H, L, Dh]}, with {@code rotate_half(x) = cat(-x[Dh/2:], x[:Dh/2])}. */
    public Tensor apply(Tensor x) {
        long half = x.size(-1) / 2;
        Tensor rotated = cat(new TensorVector(x.narrow(-1, half, half).neg(), x.narrow(-1, 0, half)), -1);
        return x.mul(cos).add(rotated.mul(sin));
    }

    @Override
    public void close() {
        Native.release(cos);
        Native.release(sin);
    }
}
