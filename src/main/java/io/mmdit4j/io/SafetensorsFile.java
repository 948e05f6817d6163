package io.mmdit4j.io;

import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Torch;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.pytorch.BoolOptional;
import org.bytedeco.pytorch.LongOptional;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Set;

import static org.bytedeco.pytorch.global.torch.empty;
import static org.bytedeco.pytorch.global.torch.from_file;

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
    /** Reads into memory go in pieces of at most this size (a ByteBuffer holds at most 2 GB). */
    private static final int READ_PIECE = 1 << 30;

    private final SafetensorsHeader header;
    private final FileSnapshot opened;
    private final boolean memoryMapped;
    private Tensor bytes; // [fileSize] uint8 view of the whole file, created on the first mapped load
    private FileChannel channel; // for reads into memory, opened on the first such load

    private SafetensorsFile(SafetensorsHeader header, FileSnapshot opened, boolean memoryMapped) {
        this.header = header;
        this.opened = opened;
        this.memoryMapped = memoryMapped;
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
        FileSnapshot after = FileSnapshot.of(file);
        String change = before.changeTo(after);
        if (change == null && after.size() != header.fileSize()) change = "size " + header.fileSize() + " -> " + after.size() + " bytes";
        if (change != null) {
            throw new ModelFormatException(file + ": the file changed while its header was read (" + change
                    + "): open it again once it is complete");
        }
        CheckpointFiles.opened(after);
        return new SafetensorsFile(header, after, memoryMapped);
    }

    public SafetensorsHeader header() {
        return header;
    }

    /** Whether tensors are views of the file's mapping (else read into memory). */
    public boolean memoryMapped() {
        return memoryMapped;
    }

    /** The file as it was when its header was read. */
    public FileSnapshot opened() {
        return opened;
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
        if (info == null) throw new ModelFormatException(origin() + ": no tensor " + FileErrors.quote(key));
        if (info.numel() == 0) {
            return empty(info.shape(), new TensorOptions(info.dtype().scalarType()), new MemoryFormatOptional());
        }
        opened.requireUnchanged(); // the offsets below are the validated header's: the file must still be that file
        return memoryMapped ? view(info) : read(info);
    }

    private Tensor view(TensorInfo info) {
        if (bytes == null) {
            Torch.init();
            Tensor mapped;
            try {
                mapped = from_file(origin(), new BoolOptional(false), new LongOptional(header.fileSize()), new TensorOptions(ScalarType.Byte));
            } catch (RuntimeException e) { // libtorch's own checks (e.g. a file shorter than the mapping)
                throw new ModelFormatException(origin() + ": cannot map the file: " + e.getMessage(), e);
            }
            try {
                opened.requireUnchanged(); // replaced between the check in load() and libtorch's open: the mapping may be another file's
            } catch (ModelFormatException e) {
                mapped.close();
                throw e;
            }
            bytes = Native.keep(mapped); // kept: the first load may run inside a caller's PointerScope, but the mapping is ours
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

    /** The tensor's bytes read into a new tensor of its own (no mapping); the file is checked again after the read. */
    private Tensor read(TensorInfo info) {
        Torch.init();
        long offset = header.dataStart() + info.begin();
        long length = info.byteLength();
        Tensor t = empty(info.shape(), new TensorOptions(info.dtype().scalarType()), new MemoryFormatOptional());
        try {
            if (channel == null) {
                channel = FileChannel.open(header.file(), StandardOpenOption.READ);
                opened.requireUnchanged(); // the channel must read the file whose header was validated
            }
            if (!readFully(channel, offset, new BytePointer(t.data_ptr()), length, READ_PIECE)) {
                opened.requireUnchanged();
                throw new ModelFormatException(origin() + ": tensor " + FileErrors.quote(info.name()) + ": the file ends inside its data");
            }
            opened.requireUnchanged(); // a change during the read would leave a mix of old and new bytes
            return t;
        } catch (IOException e) {
            t.close();
            throw new ModelFormatException(origin() + ": cannot read tensor " + FileErrors.quote(info.name()) + ": " + FileErrors.reason(e), e);
        } catch (RuntimeException e) {
            t.close();
            throw e;
        }
    }

    /**
     * Reads {@code length} bytes at {@code fileOffset} into native memory at {@code dst}, in pieces of at most {@code piece}
     * bytes (a ByteBuffer holds at most 2 GB); false when the file ends first.
     */
    static boolean readFully(FileChannel ch, long fileOffset, BytePointer dst, long length, int piece) throws IOException {
        for (long done = 0; done < length; ) {
            int n = (int) Math.min(length - done, piece);
            ByteBuffer buf = new BytePointer(dst).position(done).limit(done + n).asByteBuffer();
            int start = buf.position();
            while (buf.hasRemaining()) {
                if (ch.read(buf, fileOffset + done + (buf.position() - start)) < 0) return false;
            }
            done += n;
        }
        return true;
    }

    @Override
    public synchronized void close() {
        if (bytes != null) {
            Native.release(bytes);
            bytes = null;
        }
        if (channel != null) {
            try {
                channel.close();
            } catch (IOException ignored) {
                // a read-only channel has nothing to flush
            }
            channel = null;
        }
    }
}
