package io.mmdit4j.io.quant;

import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * A float tensor kept in its stored dtype (F16 / BF16 in a GGUF file: the embedders and the final layer llama-quantize
 * leaves unquantized) and converted to the compute dtype per forward like the quantized weights around it, so the
 * model's memory stays the file's size instead of holding converted copies. The conversion is the one loading would do
 * ({@code Tensor.to}), so the values are the same bits.
 */
public final class PlainTensor extends QuantizedTensor {
    private final Tensor data; // owned, the stored dtype and logical shape

    /** @param data a floating-point tensor (owned from now on) */
    public PlainTensor(Tensor data) {
        super(Tensors.shape(data));
        this.data = data;
    }

    @Override
    public String format() {
        return Tensors.dtype(data).safetensorsName();
    }

    @Override
    public ScalarType valueType() {
        return data.scalar_type();
    }

    @Override
    public long storedBytes() {
        return data.numel() * DType.of(data.scalar_type()).bytes();
    }

    @Override
    public DeviceSpec device() {
        return DeviceSpec.of(data);
    }

    @Override
    public long blockElements() {
        return 1;
    }

    @Override
    public Tensor values(long first, long count) {
        try (PointerScope s = new PointerScope()) {
            return Tensors.keep(data.reshape(-1).narrow(0, first, count).to(ScalarType.Float));
        }
    }

    @Override
    public Tensor elements(long first, long count, ScalarType dtype) {
        try (PointerScope s = new PointerScope()) {
            return Tensors.keep(data.reshape(-1).narrow(0, first, count).to(dtype)); // as StateDict.take converts: the same bits
        }
    }

    @Override
    public QuantizedTensor map(java.util.function.UnaryOperator<Tensor> f) {
        try (PointerScope s = new PointerScope()) {
            return new PlainTensor(Tensors.keep(f.apply(data)));
        }
    }

    @Override
    public void close() {
        release(data);
    }
}
