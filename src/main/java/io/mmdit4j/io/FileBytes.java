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
import java.nio.file.StandardOpenOption;

import static org.bytedeco.pytorch.global.torch.empty;
import static org.bytedeco.pytorch.global.torch.from_file;

/**
 * The data of a checkpoint file whose header was validated, as uint8 tensors of byte ranges: views of the file's
 * private memory mapping through libtorch's own MapAllocator ({@code at::from_file}: zero copy, pages load on first
 * touch, files above 2 GB work, in-place writes never reach the file), or, when not memory-mapped, read into memory of
 * their own so later changes of the file cannot reach them. Every range is checked first (one {@code stat}) against the
 * snapshot taken when the header was read: a file that shrank under its mapping would make the next read of a page a
 * SIGBUS. Shared by the safetensors and GGUF readers.
 */
public final class FileBytes implements AutoCloseable {
    /** Reads into memory go in pieces of at most this size (a ByteBuffer holds at most 2 GB). */
    private static final int READ_PIECE = 1 << 30;

    private final FileSnapshot opened;
    private final boolean memoryMapped;
    private Tensor bytes;        // [fileSize] uint8 view of the whole file, created on the first mapped range
    private FileChannel channel; // for reads into memory, opened on the first such range

    public FileBytes(FileSnapshot opened, boolean memoryMapped) {
        this.opened = opened;
        this.memoryMapped = memoryMapped;
    }

    public FileSnapshot opened() {
        return opened;
    }

    public boolean memoryMapped() {
        return memoryMapped;
    }

    private String origin() {
        return opened.file().toString();
    }

    /**
     * Bytes {@code [offset, offset + length)} of the file as a uint8 tensor {@code [length]}, owned by the caller: a view
     * of the mapping, or a copy read into memory. {@code what} names the tensor for error messages.
     */
    public synchronized Tensor range(long offset, long length, String what) {
        opened.requireUnchanged(); // the offsets are the validated header's: the file must still be that file
        return memoryMapped ? view(offset, length) : read(offset, length, what);
    }

    private Tensor view(long offset, long length) {
        if (bytes == null) {
            Torch.init();
            Tensor mapped;
            try {
                mapped = from_file(origin(), new BoolOptional(false), new LongOptional(opened.size()), new TensorOptions(ScalarType.Byte));
            } catch (RuntimeException e) { // libtorch's own checks (e.g. a file shorter than the mapping)
                throw new ModelFormatException(origin() + ": cannot map the file: " + e.getMessage(), e);
            }
            try {
                opened.requireUnchanged(); // replaced between the check in range() and libtorch's open: the mapping may be another file's
            } catch (ModelFormatException e) {
                mapped.close();
                throw e;
            }
            bytes = Native.keep(mapped); // kept: the first range may be taken inside a caller's PointerScope, but the mapping is ours
        }
        return bytes.narrow(0, offset, length);
    }

    /** The bytes read into a new tensor of its own (no mapping); the file is checked again after the read. */
    private Tensor read(long offset, long length, String what) {
        Torch.init();
        Tensor t = empty(new long[] {length}, new TensorOptions(ScalarType.Byte), new MemoryFormatOptional());
        try {
            if (channel == null) {
                channel = FileChannel.open(opened.file(), StandardOpenOption.READ);
                opened.requireUnchanged(); // the channel must read the file whose header was validated
            }
            if (!readFully(channel, offset, new BytePointer(t.data_ptr()), length, READ_PIECE)) {
                opened.requireUnchanged();
                throw new ModelFormatException(origin() + ": " + what + ": the file ends inside its data");
            }
            opened.requireUnchanged(); // a change during the read would leave a mix of old and new bytes
            return t;
        } catch (IOException e) {
            t.close();
            throw new ModelFormatException(origin() + ": cannot read " + what + ": " + FileErrors.reason(e), e);
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
