package io.mmdit4j.io.gguf;

import io.mmdit4j.io.FileWrites;
import io.mmdit4j.io.ModelFormatException;
import org.bytedeco.pytorch.Tensor;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Writes GGUF v3 files as llama.cpp's gguf-py and city96's convert.py do: magic, version 3, counts, the key-value metadata
 * in the order given, tensor infos in byte-wise name order with {@code ne} = the torch shape reversed, zero padding to the
 * alignment (32), each tensor's data at an aligned offset and zero-padded to it. Tensors are produced one at a time
 * ({@link Data}) so a 12 B-parameter model is quantized without holding it in memory; the file appears atomically.
 */
public final class GgufWriter {
    private static final int ALIGNMENT = 32;

    /** A metadata value with its GGUF value type. */
    public record Kv(int type, Object value) {
        public static Kv string(String s) { return new Kv(GgufHeader.STRING, s); }
        public static Kv u32(long v) { return new Kv(GgufHeader.U32, v); }
        /** An array of INT32 (how ComfyUI-GGUF writes {@code comfy.gguf.orig_shape}). */
        public static Kv i32s(long... v) { return new Kv(GgufHeader.ARRAY, v.clone()); }
    }

    /** One tensor: its name, type and torch shape. */
    public record Spec(String name, GgufType type, long[] shape) {
        long bytes() {
            long n = 1;
            for (long s : shape) n = Math.multiplyExact(n, s);
            return type.bytes(n);
        }
    }

    /** The bytes of each tensor, asked for in file order: a CPU tensor of exactly {@code spec.bytes()} bytes (any dtype). */
    @FunctionalInterface
    public interface Data {
        Tensor bytes(Spec spec);
    }

    private GgufWriter() {}

    /** Writes {@code file}; {@code data} gives the tensors' bytes (closed after writing). */
    public static void write(Path file, Map<String, Kv> metadata, List<Spec> tensors, Data data) {
        List<Spec> sorted = new ArrayList<>(tensors);
        sorted.sort((a, b) -> Arrays.compare(a.name().getBytes(StandardCharsets.UTF_8), b.name().getBytes(StandardCharsets.UTF_8)));
        for (Spec s : sorted) {
            if (s.shape().length == 0 || s.shape()[s.shape().length - 1] % s.type().blockElements() != 0) {
                throw new IllegalArgumentException(s.name() + ": " + s.type() + " needs rows of whole " + s.type().blockElements()
                        + "-element blocks, shape " + Arrays.toString(s.shape()));
            }
        }
        ByteArrayOutputStream head = new ByteArrayOutputStream();
        Le out = new Le(head);
        out.u32(GgufHeader.MAGIC);
        out.u32(3);
        out.u64(sorted.size());
        out.u64(metadata.size());
        metadata.forEach((k, v) -> {
            out.string(k);
            out.u32(v.type());
            out.value(v);
        });
        Map<String, Long> offsets = new LinkedHashMap<>();
        long offset = 0;
        for (Spec s : sorted) {
            out.string(s.name());
            out.u32(s.shape().length);
            for (int d = s.shape().length - 1; d >= 0; d--) out.u64(s.shape()[d]);
            out.u32(s.type().id());
            out.u64(offset);
            offsets.put(s.name(), offset);
            offset += pad(s.bytes());
        }
        while (head.size() % ALIGNMENT != 0) head.write(0);
        byte[] header = head.toByteArray();
        FileWrites.atomically(file, ch -> {
            FileWrites.write(ch, ByteBuffer.wrap(header));
            for (Spec s : sorted) {
                try (Tensor t = data.bytes(s)) {
                    long n = t.numel() * t.element_size();
                    if (n != s.bytes()) {
                        throw new ModelFormatException(file + ": tensor '" + s.name() + "' got " + n + " bytes, " + s.type() + " "
                                + Arrays.toString(s.shape()) + " needs " + s.bytes());
                    }
                    FileWrites.write(ch, t);
                }
                FileWrites.write(ch, ByteBuffer.allocate((int) (pad(s.bytes()) - s.bytes())));
            }
        });
    }

    private static long pad(long n) {
        return (n + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
    }

    /** The same metadata in a sorted map (for writers that do not care about the order). */
    public static Map<String, Kv> sorted(Map<String, Kv> kv) {
        return new TreeMap<>(kv);
    }

    /** Little-endian writing into a byte stream. */
    private static final class Le {
        private final ByteArrayOutputStream out;

        Le(ByteArrayOutputStream out) {
            this.out = out;
        }

        void u32(long v) {
            ByteBuffer b = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt((int) v);
            out.writeBytes(b.array());
        }

        void u64(long v) {
            ByteBuffer b = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(v);
            out.writeBytes(b.array());
        }

        void string(String s) {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            u64(b.length);
            out.writeBytes(b);
        }

        void value(Kv v) {
            switch (v.type()) {
                case GgufHeader.STRING -> string((String) v.value());
                case GgufHeader.U32 -> u32((Long) v.value());
                case GgufHeader.ARRAY -> {
                    long[] a = (long[]) v.value();
                    u32(GgufHeader.I32);
                    u64(a.length);
                    for (long x : a) u32(x);
                }
                default -> throw new IllegalArgumentException("metadata type " + v.type() + " is not written here");
            }
        }
    }

}
