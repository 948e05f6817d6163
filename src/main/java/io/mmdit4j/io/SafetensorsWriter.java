package io.mmdit4j.io;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.pytorch.Tensor;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
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
        Map<String, Spec> specs = new TreeMap<>();
        tensors.forEach((k, t) -> specs.put(k, new Spec(Tensors.dtype(t), Tensors.shape(t))));
        write(file, specs, metadata, k -> Tensors.keep(tensors.get(k))); // the writer releases what it is given: one more reference
    }

    /** A tensor's dtype and shape, known before its data. */
    public record Spec(DType dtype, long[] shape) {
        long bytes() {
            long n = dtype.bytes();
            for (long s : shape) n = Math.multiplyExact(n, s);
            return n;
        }
    }

    /** The data of the tensor {@code name}, asked for in file (sorted) order; the writer closes it. */
    @FunctionalInterface
    public interface Data {
        Tensor tensor(String name);
    }

    /**
     * Writes the tensors {@code specs} describes, asking {@code data} for each one in turn (streamed: a checkpoint larger
     * than memory can be converted tensor by tensor); each must have its spec's dtype and shape.
     */
    public static void write(Path file, Map<String, Spec> specs, Map<String, String> metadata, Data data) {
        Map<String, Spec> sorted = new TreeMap<>(specs);
        ObjectMapper json = new ObjectMapper();
        ObjectNode header = json.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode meta = header.putObject("__metadata__");
            metadata.forEach(meta::put);
        }
        long offset = 0;
        for (Map.Entry<String, Spec> e : sorted.entrySet()) {
            Spec t = e.getValue();
            long nbytes = t.bytes();
            ObjectNode entry = header.putObject(e.getKey());
            entry.put("dtype", t.dtype().safetensorsName());
            ArrayNode shape = entry.putArray("shape");
            for (long d : t.shape()) shape.add(d);
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

        FileWrites.atomically(file, ch -> {
            FileWrites.write(ch, head);
            for (Map.Entry<String, Spec> e : sorted.entrySet()) {
                Tensor t = data.tensor(e.getKey());
                try {
                    if (Tensors.dtype(t) != e.getValue().dtype() || !java.util.Arrays.equals(Tensors.shape(t), e.getValue().shape())) {
                        throw new IllegalArgumentException(e.getKey() + ": " + Tensors.dtype(t) + " " + java.util.Arrays.toString(Tensors.shape(t))
                                + " is not the announced " + e.getValue().dtype() + " " + java.util.Arrays.toString(e.getValue().shape()));
                    }
                    FileWrites.write(ch, t);
                } finally {
                    io.mmdit4j.runtime.Native.release(t);
                }
            }
        });
    }
}
