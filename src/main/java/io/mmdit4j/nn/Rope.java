package io.mmdit4j.nn;

import io.mmdit4j.runtime.Native;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.LongOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch.ScalarType;

import static org.bytedeco.pytorch.global.torch.arange;
import static org.bytedeco.pytorch.global.torch.cat;
import static org.bytedeco.pytorch.global.torch.outer;
import static org.bytedeco.pytorch.global.torch.pow;
import static org.bytedeco.pytorch.global.torch.repeat_interleave;
import static org.bytedeco.pytorch.global.torch.stack;

/**
 * Multi-axis rotary position embedding (diffusers {@code FluxPosEmbed} with {@code get_1d_rotary_pos_embed},
 * {@code repeat_interleave_real=True}): per axis {@code ω_k = 1/θ^(2k/d)} and the angles in float64, cos/sin
 * repeat-interleaved and stored fp32. Build a table once per token layout and reuse it across blocks and steps.
 * A table may also pair channels by halves ({@link #halves}: COSMOS's 3-D RoPE).
 */
public final class Rope implements AutoCloseable {
    private final Tensor cos; // [S, Dh] fp32
    private final Tensor sin; // [S, Dh] fp32
    private final boolean halves; // channel i pairs with i + Dh/2 (rotate-half), else 2k with 2k+1

    private Rope(Tensor cos, Tensor sin) {
        this(cos, sin, false);
    }

    private Rope(Tensor cos, Tensor sin, boolean halves) {
        this.cos = cos;
        this.sin = sin;
        this.halves = halves;
    }

    /**
     * A table whose channel {@code i} pairs with {@code i + Dh/2} ("rotate half": cos/sin laid out as
     * {@code cat(freqs, freqs)}), applied as diffusers' {@code apply_rotary_emb(x, (cos, sin), use_real=True,
     * use_real_unbind_dim=-2)}: {@code x·cos + cat(−x[Dh/2:], x[:Dh/2])·sin} in fp32, cast back. Takes ownership of
     * {@code cos} and {@code sin} ({@code [S, Dh]}, fp32, on the activations' device).
     */
    public static Rope halves(Tensor cos, Tensor sin) {
        if (cos.dim() != 2 || !java.util.Arrays.equals(io.mmdit4j.runtime.Tensors.shape(cos), io.mmdit4j.runtime.Tensors.shape(sin))) {
            throw new IllegalArgumentException("RoPE cos/sin must be [S, Dh] tables of one shape");
        }
        return new Rope(cos, sin, true);
    }

    /** Table for position ids {@code [S, axes]} (any float dtype) with per-axis widths {@code axesDims}, on the ids' device. */
    public static Rope build(Tensor ids, int[] axesDims, double theta) {
        return build(ids, axesDims, theta, io.mmdit4j.runtime.DeviceSpec.of(ids));
    }

    /** As {@link #build(Tensor, int[], double)}, with the table placed on {@code device}. */
    public static Rope build(Tensor ids, int[] axesDims, double theta, io.mmdit4j.runtime.DeviceSpec device) {
        if (ids.dim() != 2 || ids.size(1) != axesDims.length) {
            throw new IllegalArgumentException("position ids must be [S, " + axesDims.length + "], got dim " + ids.dim()
                    + " with last size " + (ids.dim() > 0 ? ids.size(-1) : 0));
        }
        try (PointerScope scope = new PointerScope()) {
            return buildTable(ids, axesDims, theta, device, ScalarType.Double);
        }
    }

    /**
     * As {@link #build(Tensor, int[], double, io.mmdit4j.runtime.DeviceSpec)} with frequencies and angles in
     * <b>fp32</b> ({@code get_1d_rotary_pos_embed(..., freqs_dtype=float32)}, HunyuanVideo's RoPE).
     */
    public static Rope buildFp32(Tensor ids, int[] axesDims, double theta, io.mmdit4j.runtime.DeviceSpec device) {
        if (ids.dim() != 2 || ids.size(1) != axesDims.length) {
            throw new IllegalArgumentException("position ids must be [S, " + axesDims.length + "], got dim " + ids.dim()
                    + " with last size " + (ids.dim() > 0 ? ids.size(-1) : 0));
        }
        try (PointerScope scope = new PointerScope()) {
            return buildTable(ids, axesDims, theta, device, ScalarType.Float);
        }
    }

    /**
     * Host bytes building a table for {@code tokens} positions takes at its peak (angles, cos and sin in the frequency
     * dtype, interleaved, and the float32 table; they live until the build's scope closes): about 48 bytes per token and
     * axis width. {@code inspect --config} at 4096x4096 (65,536 + 512 tokens, widths 128) grew RSS by 330 MB: 40 bytes.
     */
    public static long buildBytes(long tokens, int[] axesDims) {
        return tokens * java.util.Arrays.stream(axesDims).sum() * 48L;
    }

    private static Rope buildTable(Tensor ids, int[] axesDims, double theta, io.mmdit4j.runtime.DeviceSpec device, ScalarType freqType) {
        TensorVector cosParts = new TensorVector();
        TensorVector sinParts = new TensorVector();
        Tensor pos = ids.to(ScalarType.Float);
        TensorOptions f64 = new TensorOptions(freqType); // float64 (FLUX) or float32 (HunyuanVideo)
        for (int a = 0; a < axesDims.length; a++) {
            int d = axesDims[a];
            Tensor exponent = arange(new Scalar(0), new Scalar(d), new Scalar(2), f64).narrow(0, 0, d / 2).div(new Scalar((double) d));
            Tensor freqs = pow(new Scalar(theta), exponent).reciprocal();       // [d/2] freqType
            Tensor angles = outer(pos.select(1, a).to(freqType), freqs); // [S, d/2] freqType
            cosParts.push_back(repeat_interleave(angles.cos(), 2, new LongOptional(1), new LongOptional()).to(ScalarType.Float));
            sinParts.push_back(repeat_interleave(angles.sin(), 2, new LongOptional(1), new LongOptional()).to(ScalarType.Float));
        }
        Tensor cos = cat(cosParts, 1), sin = cat(sinParts, 1);
        if (!device.isCpu()) {
            cos = io.mmdit4j.runtime.Transfers.to(cos, device, ScalarType.Float); // built once per request, then on the device
            sin = io.mmdit4j.runtime.Transfers.to(sin, device, ScalarType.Float);
        }
        return new Rope(Native.keep(cos), Native.keep(sin));
    }

    /**
     * FLUX's and HunyuanVideo's split of the head dimension into the (t, h, w) RoPE axes, 1/8, 7/16 and 7/16 (16/56/56 at
     * 128), for checkpoints that do not record theirs; null where {@code headDim} does not split so into even widths.
     */
    public static int[] defaultAxes(int headDim) {
        int a0 = headDim / 8;
        int rest = (headDim - a0) / 2;
        if (headDim % 8 != 0 || a0 % 2 != 0 || rest % 2 != 0 || a0 + 2 * rest != headDim) return null;
        return new int[] {a0, rest, rest};
    }

    /** Another handle on this table (its own references: closing it leaves this one valid), for a table cached across calls. */
    public Rope share() {
        return new Rope(Native.keep(cos), Native.keep(sin), halves);
    }

    public Tensor cos() { return cos; }
    public Tensor sin() { return sin; }
    public long length() { return cos.size(0); }

    /**
     * Rotates the channel pairs of {@code x [B, H, S, Dh]}: {@code out = x·cos + rot(x)·sin} in fp32, cast back, with
     * {@code rot(x) = [-x1, x0, -x3, x2, ...]} (consecutive pairs) or, for a {@link #halves} table,
     * {@code rot(x) = cat(-x[Dh/2:], x[:Dh/2])}.
     */
    public Tensor apply(Tensor x) {
        io.mmdit4j.runtime.Placement.require("rope", x, cos, sin);
        return io.mmdit4j.runtime.Scopes.local(() -> { // the halves, rot(x) and the fp32 product die here
            long b = x.size(0), h = x.size(1), s = x.size(2), dh = x.size(3);
            ScalarType work = x.scalar_type().value == ScalarType.Double.value ? ScalarType.Double : ScalarType.Float; // fp64 stays fp64 (gradient checks)
            Tensor rotated;
            if (halves) {
                rotated = cat(new TensorVector(x.narrow(3, dh / 2, dh / 2).neg(), x.narrow(3, 0, dh / 2)), 3).to(work);
            } else {
                TensorVector parts = x.reshape(b, h, s, dh / 2, 2).unbind(-1);
                rotated = stack(new TensorVector(parts.get(1).neg(), parts.get(0)), -1).flatten(3, 4).to(work);
            }
            Tensor out = x.to(work).mul(cos);
            out.addcmul_(rotated, sin); // x·cos + rot(x)·sin, accumulated in place (returns out itself)
            return out.to(x.scalar_type());
        });
    }

    @Override
    public void close() {
        Native.release(cos);
        Native.release(sin);
    }
}
