package io.mmdit4j.io;

import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Torch;
import org.bytedeco.pytorch.BoolOptional;
import org.bytedeco.pytorch.LongOptional;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.nio.file.Path;
import java.util.Set;

import static org.bytedeco.pytorch.global.torch.empty;
import static org.bytedeco.pytorch.global.torch.from_file;

/**
 * A safetensors file memory-mapped through libtorch's own MapAllocator ({@code at::from_file}, private
 * mapping): tensors are views of the mapping, pages load on first touch, files above 2 GB work, and
 * in-place writes never reach the file. The mapping lives as long as any view does.
 */
public final class SafetensorsFile implements TensorSource {
    private final SafetensorsHeader header;
    private Tensor bytes; // [fileSize] uint8 view of the whole file, created on first load

    private SafetensorsFile(SafetensorsHeader header) {
        this.header = header;
    }

    /** Reads and validates the header; the file is mapped on the first {@link #load}. */
    public static SafetensorsFile open(Path file) {
        return new SafetensorsFile(SafetensorsHeader.read(file));
    }

    public SafetensorsHeader header() {
        return header;
    }

    @Override
    public Set<String> keys() {
        return header.tensors().keySet();
    }

    @Override
    public TensorInfo info(String key) {
        return header.tensors().get(key);
    }

    @Override
    public String origin() {
        return header.file().toString();
    }

    @Override
    public synchronized Tensor load(String key) {
        TensorInfo info = info(key);
        if (info == null) throw new ModelFormatException(origin() + ": no tensor '" + key + "'");
        if (info.numel() == 0) {
            return empty(info.shape(), new TensorOptions(info.dtype().scalarType()), new MemoryFormatOptional());
        }
        if (bytes == null) {
            Torch.init();
            // Kept: the first load may run inside a caller's PointerScope, but the mapping is ours.
            bytes = Native.keep(from_file(origin(), new BoolOptional(false), new LongOptional(header.fileSize()),
                    new TensorOptions(ScalarType.Byte)));
        }
        long offset = header.dataStart() + info.begin();
        try (Tensor raw = bytes.narrow(0, offset, info.byteLength())) {
            if (offset % info.dtype().bytes() == 0) {
                try (Tensor typed = raw.view(info.dtype().scalarType())) {
                    return typed.view(info.shape());
                }
            }
            // Unaligned data (a writer that did not pad its header): one copy, then reinterpret.
            try (Tensor copy = raw.clone(); Tensor typed = copy.view(info.dtype().scalarType())) {
                return typed.view(info.shape());
            }
        }
    }

    @Override
    public synchronized void close() {
        if (bytes != null) {
            Native.release(bytes);
            bytes = null;
        }
    }
}
