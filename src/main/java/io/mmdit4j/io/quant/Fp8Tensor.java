package io.mmdit4j.io.quant;

import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * A float8 tensor (e4m3fn or e5m2) of an fp8 checkpoint, optionally with ComfyUI's per-tensor {@code scale_weight}: the
 * upcast value is {@code fp32(code)}, times the scale in one fp32 multiply when there is one. Without a scale the codes
 * convert straight to the compute dtype (exact: every e4m3fn and e5m2 value is a bf16, an fp16 and an fp32).
 */
public final class Fp8Tensor extends QuantizedTensor {
    private final Tensor codes; // float8 tensor of the logical shape, owned
    private final Tensor scale; // fp32 0-d tensor on the codes' device, owned; null without a scale

    /** @param codes a float8 tensor (owned from now on); @param scale an fp32 scalar tensor (owned) or null */
    public Fp8Tensor(Tensor codes, Tensor scale) {
        super(Tensors.shape(codes));
        if (!Tensors.dtype(codes).isFp8()) throw new IllegalArgumentException("not a float8 tensor: " + Tensors.dtype(codes));
        this.codes = codes;
        this.scale = scale;
    }

    /** A shapes-only tensor on the meta device (real-size dry runs). */
    public static Fp8Tensor meta(long[] shape, DType dtype, boolean scaled) {
        try (PointerScope s = new PointerScope(); Device d = new Device("meta")) {
            org.bytedeco.pytorch.TensorOptions o = new org.bytedeco.pytorch.TensorOptions(dtype.scalarType()).device(new org.bytedeco.pytorch.DeviceOptional(d));
            Tensor codes = org.bytedeco.pytorch.global.torch.empty(shape, o, new org.bytedeco.pytorch.MemoryFormatOptional());
            Tensor scale = scaled ? org.bytedeco.pytorch.global.torch.empty(new long[0],
                    new org.bytedeco.pytorch.TensorOptions(ScalarType.Float).device(new org.bytedeco.pytorch.DeviceOptional(d)), new org.bytedeco.pytorch.MemoryFormatOptional()) : null;
            return new Fp8Tensor(Tensors.keep(codes), scale == null ? null : Tensors.keep(scale));
        }
    }

    public DType dtype() {
        return Tensors.dtype(codes);
    }

    /** Whether a {@code scale_weight} multiplies the codes. */
    public boolean scaled() {
        return scale != null;
    }

    @Override
    public String format() {
        return dtype().safetensorsName() + (scale != null ? " (scaled)" : "");
    }

    @Override
    public long storedBytes() {
        return codes.numel() + (scale != null ? 4 : 0);
    }

    @Override
    public DeviceSpec device() {
        return DeviceSpec.of(codes);
    }

    @Override
    public long blockElements() {
        return 1;
    }

    private Tensor flat(long first, long count) {
        return codes.reshape(-1).narrow(0, first, count);
    }

    @Override
    public Tensor values(long first, long count) {
        try (PointerScope s = new PointerScope()) {
            Tensor v = flat(first, count).to(ScalarType.Float);
            return Tensors.keep(scale != null ? v.mul_(scale) : v);
        }
    }

    @Override
    public Tensor elements(long first, long count, ScalarType dtype) {
        if (scale != null) return super.elements(first, count, dtype);
        try (PointerScope s = new PointerScope()) {
            return Tensors.keep(flat(first, count).to(dtype));
        }
    }

    @Override
    public QuantizedTensor map(java.util.function.UnaryOperator<Tensor> f) {
        try (PointerScope s = new PointerScope()) {
            return new Fp8Tensor(Tensors.keep(f.apply(codes)), scale == null ? null : Tensors.keep(f.apply(scale)));
        }
    }

    @Override
    public void close() {
        release(codes, scale);
    }
}
