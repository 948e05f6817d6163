package io.mmdit4j.io.quant;

import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * A quantized tensor stored as equal blocks of bytes, each decoding to {@link #blockElements} consecutive elements (GGUF's
 * block types): the data is a uint8 tensor {@code [blocks, blockBytes]}, and a range of elements dequantizes the blocks
 * that cover it. Formats supply {@link #decode}.
 */
public abstract class BlockQuantizedTensor extends QuantizedTensor {
    protected final Tensor blocks; // [n, blockBytes] uint8, owned

    /** @param blocks {@code [n, blockBytes]} uint8 (owned from now on); n·blockElements must cover {@code shape} exactly */
    protected BlockQuantizedTensor(long[] shape, Tensor blocks) {
        super(shape);
        this.blocks = blocks;
    }

    /** The fp32 values of {@code raw} ({@code [n, blockBytes]} uint8): {@code [n, blockElements]}, exact. */
    protected abstract Tensor decode(Tensor raw);

    /** A tensor of this format over {@code blocks} (on any device), with the same shape. */
    protected abstract BlockQuantizedTensor with(Tensor blocks);

    /** The stored blocks {@code [n, blockBytes]} (borrowed). */
    public Tensor blocks() {
        return blocks;
    }

    @Override
    public long storedBytes() {
        return blocks.numel();
    }

    @Override
    public DeviceSpec device() {
        return DeviceSpec.of(blocks);
    }

    @Override
    public Tensor values(long first, long count) {
        long b = blockElements();
        long b0 = first / b, b1 = (first + count + b - 1) / b;
        try (PointerScope scope = new PointerScope()) {
            Tensor values = decode(blocks.narrow(0, b0, b1 - b0)).view(-1);
            if (first != b0 * b || count != (b1 - b0) * b) values = values.narrow(0, first - b0 * b, count);
            return Tensors.keep(values);
        }
    }

    @Override
    public QuantizedTensor map(java.util.function.UnaryOperator<Tensor> f) {
        try (PointerScope scope = new PointerScope()) {
            return with(Tensors.keep(f.apply(blocks)));
        }
    }

    @Override
    public void close() {
        release(blocks);
    }
}
