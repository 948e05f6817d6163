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

        FileWrites.atomically(file, ch -> {
            FileWrites.write(ch, head);
            for (Tensor t : sorted.values()) FileWrites.write(ch, t);
        });
    }
}
