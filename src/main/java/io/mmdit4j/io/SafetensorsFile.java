package io.mmdit4j.io;

import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;

import java.nio.file.Path;
import java.util.Set;

import static org.bytedeco.pytorch.global.torch.empty;

/**
 * A safetensors file, memory-mapped through libtorch's own MapAllocator ({@code at::from_file}, private mapping):
 * tensors are views of the mapping, pages load on first touch, files above 2 GB work, and in-place writes never reach
 * the file. The mapping lives as long as any view does. Opened with {@code memoryMapped = false} (or inside an in-memory
 * {@link CheckpointFiles#load}), each tensor is read into memory of its own instead, so later changes of the file cannot
 * reach it.
 *
 * <p>A mapped file must not shrink while its pages are in use: the next read of a page past the new end is a SIGBUS that
 * kills the process. Every {@link #load} therefore first checks (one {@code stat}) that the file is still the one whose
 * header was validated, and {@link CheckpointFiles#requireUnchanged} repeats that before each generation; a file
 * truncated while a forward pass reads it can still crash it, as with every engine that maps its weights.
 */
public final class SafetensorsFile implements TensorSource {
    private final SafetensorsHeader header;
    private final FileBytes data;

    private SafetensorsFile(SafetensorsHeader header, FileSnapshot opened, boolean memoryMapped) {
        this.header = header;
        this.data = new FileBytes(opened, memoryMapped);
    }

    /**
     * Reads and validates the header; the file is mapped on the first {@link #load}, or read into memory tensor by tensor
     * inside an in-memory {@link CheckpointFiles#load}.
     */
    public static SafetensorsFile open(Path file) {
        return open(file, CheckpointFiles.mappingNow());
    }

    /** Reads and validates the header; tensors are views of the file's mapping, or read into memory. */
    public static SafetensorsFile open(Path file, boolean memoryMapped) {
        FileSnapshot before = FileSnapshot.of(file);
        SafetensorsHeader header = SafetensorsHeader.read(file);
        FileSnapshot after = CheckpointFiles.openedUnchanged(file, before, header.fileSize());
        return new SafetensorsFile(header, after, memoryMapped);
    }

    public SafetensorsHeader header() {
        return header;
    }

    /** Whether tensors are views of the file's mapping (else read into memory). */
    public boolean memoryMapped() {
        return data.memoryMapped();
    }

    /** The file as it was when its header was read. */
    public FileSnapshot opened() {
        return data.opened();
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
    public Tensor load(String key) {
        TensorInfo info = info(key);
        if (info == null) throw new ModelFormatException(origin() + ": no tensor " + FileErrors.quote(key));
        if (info.numel() == 0) {
            return empty(info.shape(), new TensorOptions(info.dtype().scalarType()), new MemoryFormatOptional());
        }
        long offset = header.dataStart() + info.begin();
        try (Tensor raw = data.range(offset, info.byteLength(), "tensor " + FileErrors.quote(info.name()))) {
            if (!data.memoryMapped() || offset % info.dtype().bytes() == 0) { // a read copy is freshly allocated: aligned
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
    public void close() {
        data.close();
    }
}
