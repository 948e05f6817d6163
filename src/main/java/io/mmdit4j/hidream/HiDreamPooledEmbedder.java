package io.mmdit4j.hidream;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.io.TensorSource;
import io.mmdit4j.io.WeightFiles;
import io.mmdit4j.nn.MlpEmbedder;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Native;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;

import java.nio.file.Path;

/**
 * The transformer's pooled-text MLP ({@code p_embedder.pooled_embedder}) alone, read from its checkpoint: guidance deltas
 * {@code p_embedder(pooled+) − p_embedder(pooled−)} are computed with the prompts' text encoders while the transformer is
 * not loaded (text offloading). The same weights and function as {@link HiDreamTransformer#guidanceDelta}.
 */
final class HiDreamPooledEmbedder implements AutoCloseable {
    private final MlpEmbedder embedder;
    private final DType dtype;
    private final DeviceSpec device;
    private final Device torchDevice;

    private HiDreamPooledEmbedder(MlpEmbedder embedder, DType dtype, DeviceSpec device) {
        this.embedder = embedder;
        this.dtype = dtype;
        this.device = device;
        this.torchDevice = Native.keep(device.torchDevice());
    }

    static HiDreamPooledEmbedder load(Path transformer, HiDreamConfig c, DType dtype, DeviceSpec device) {
        try (TensorSource source = WeightFiles.open(transformer); PointerScope scope = new PointerScope()) {
            StateDict sd = StateDict.of(source).onDevice(device);
            return new HiDreamPooledEmbedder(MlpEmbedder.load(sd, "p_embedder.pooled_embedder", c.textEmbDim(), c.innerDim(), dtype), dtype, device);
        }
    }

    /** {@code p_embedder(pooledPos) − p_embedder(pooledNeg)}, [R, D], owned by the caller. */
    Tensor direction(Tensor pooledPos, Tensor pooledNeg) {
        return embedder.direction(pooledPos, pooledNeg, t -> device.isCpu() ? t.to(dtype.scalarType()) : t.to(torchDevice, dtype.scalarType()));
    }

    @Override
    public void close() {
        embedder.close();
        Native.release(torchDevice);
    }
}
