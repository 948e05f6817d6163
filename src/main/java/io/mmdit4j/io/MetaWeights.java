package io.mmdit4j.io;

import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.DeviceOptional;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.TensorOptions;

import java.util.LinkedHashMap;
import java.util.Map;

import static org.bytedeco.pytorch.global.torch.empty;

/** A parameter list as meta tensors (shapes and dtypes, no memory): real-size dry runs and key-list checks. */
public final class MetaWeights {
    private MetaWeights() {}

    public static StateDict of(String origin, Map<String, long[]> shapes, DType dtype) {
        Map<String, StateDict.Entry> entries = new LinkedHashMap<>();
        shapes.forEach((k, shape) -> entries.put(k, entry(k, shape, dtype)));
        return new StateDict(origin, entries).onDevice(DeviceSpec.META);
    }

    /** The entry {@code key}: a meta tensor of {@code shape} and {@code dtype} on every load. */
    static StateDict.Entry entry(String key, long[] shape, DType dtype) {
        return new StateDict.Entry(shape, dtype, key, () -> {
            try (Device meta = new Device("meta")) {
                return empty(shape, new TensorOptions(dtype.scalarType()).device(new DeviceOptional(meta)), new MemoryFormatOptional());
            }
        });
    }
}
