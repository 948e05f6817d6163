package io.mmdit4j.io;

import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.pytorch.Tensor;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;

/** How checkpoint writers (safetensors, GGUF) put a file on disk: atomically, tensor data straight from native memory. */
public final class FileWrites {
    private FileWrites() {}

    /** Writes a file's contents to a channel. */
    @FunctionalInterface
    public interface Body {
        void write(FileChannel ch) throws IOException;
    }

    /**
     * Writes {@code file} through {@code body} beside the target and moves it into place, so a failure never leaves a
     * half-written file; every failure is a {@link ModelFormatException} naming the file.
     */
    public static void atomically(Path file, Body body) {
        Path dir = file.toAbsolutePath().getParent();
        Path tmp = null;
        try {
            Files.createDirectories(dir);
            tmp = Files.createTempFile(dir, "." + file.getFileName(), ".part");
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
                body.write(ch);
            }
            io.mmdit4j.runtime.Files2.readableByAll(tmp); // temp files are created 0600
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new ModelFormatException(file + ": cannot write: " + FileErrors.reason(e), e);
        } finally {
            if (tmp != null) {
                try {
                    Files.deleteIfExists(tmp);
                } catch (IOException ignored) {
                    // best effort clean-up of the partial file
                }
            }
        }
    }

    /** Writes all of {@code buf}. */
    public static void write(FileChannel ch, ByteBuffer buf) throws IOException {
        while (buf.hasRemaining()) ch.write(buf);
    }

    /** Writes a CPU tensor's bytes (made contiguous first). */
    public static void write(FileChannel ch, Tensor t) throws IOException {
        long nbytes = t.numel() * Tensors.dtype(t).bytes();
        if (nbytes == 0) return;
        try (Tensor c = t.contiguous()) {
            BytePointer p = new BytePointer(c.data_ptr());
            long done = 0;
            while (done < nbytes) {
                int chunk = (int) Math.min(nbytes - done, 1 << 26);
                write(ch, p.position(done).limit(done + chunk).asByteBuffer());
                done += chunk;
            }
        }
    }
}
