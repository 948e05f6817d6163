package io.mmdit4j.io;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.pytorch.Tensor;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Map;
import java.util.TreeMap;

/**
 * Writes safetensors files the way the Hugging Face writer does (sorted names, header space-padded to a
 * multiple of 8). The file appears atomically: it is written beside the target and moved into place,
 * so a failure never leaves a half-written file.
 */
public final class SafetensorsWriter {
    private SafetensorsWriter() {}

    public static void write(Path file, Map<String, Tensor> tensors) {
        write(file, tensors, Map.of());
    }

    public static void write(Path file, Map<String, Tensor> tensors, Map<String, String> metadata) {
        Map<String, Tensor> sorted = new TreeMap<>(tensors);
        ObjectMapper json = new ObjectMapper();
        ObjectNode header = json.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode meta = header.putObject("__metadata__");
            metadata.forEach(meta::put);
        }
        long offset = 0;
        for (Map.Entry<String, Tensor> e : sorted.entrySet()) {
            Tensor t = e.getValue();
            DType dtype = Tensors.dtype(t);
            long nbytes = t.numel() * dtype.bytes();
            ObjectNode entry = header.putObject(e.getKey());
            entry.put("dtype", dtype.safetensorsName());
            ArrayNode shape = entry.putArray("shape");
            for (long s : Tensors.shape(t)) shape.add(s);
            entry.putArray("data_offsets").add(offset).add(offset + nbytes);
            offset += nbytes;
        }
        byte[] headerBytes;
        try {
            headerBytes = json.writeValueAsString(header).getBytes(StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        int padded = (headerBytes.length + 7) / 8 * 8;
        ByteBuffer head = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
        head.putLong(padded).put(headerBytes);
        while (head.hasRemaining()) head.put((byte) ' ');
        head.flip();

        Path dir = file.toAbsolutePath().getParent();
        Path tmp = null;
        try {
            Files.createDirectories(dir);
            tmp = Files.createTempFile(dir, "." + file.getFileName(), ".part");
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
                while (head.hasRemaining()) ch.write(head);
                for (Tensor t : sorted.values()) writeData(ch, t);
            }
            io.mmdit4j.runtime.Files2.readableByAll(tmp); // temp files are created 0600
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new ModelFormatException(file + ": cannot write: " + e.getMessage(), e);
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

    private static void writeData(FileChannel ch, Tensor t) throws IOException {
        long nbytes = t.numel() * Tensors.dtype(t).bytes();
        if (nbytes == 0) return;
        try (Tensor c = t.contiguous()) {
            BytePointer p = new BytePointer(c.data_ptr());
            long done = 0;
            while (done < nbytes) {
                int chunk = (int) Math.min(nbytes - done, 1 << 26);
                ByteBuffer buf = p.position(done).limit(done + chunk).asByteBuffer();
                while (buf.hasRemaining()) ch.write(buf);
                done += chunk;
            }
        }
    }
}
