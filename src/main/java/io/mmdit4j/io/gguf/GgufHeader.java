package io.mmdit4j.io.gguf;

import io.mmdit4j.io.FileErrors;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.io.TensorInfo;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.CharBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The parsed and fully validated header of a GGUF v3 file (llama.cpp / ComfyUI-GGUF): magic, version, key-value metadata,
 * tensor infos, alignment and data start. Everything that could make a later native call read outside the file is checked
 * here, in Java, before any tensor is created: counts and lengths against the bytes left in the file, dimensions and type
 * ids, byte sizes against each tensor's type and shape, offsets against the alignment, the data section and each other.
 * Every failure is a {@link ModelFormatException} naming the file, the tensor or key, and what was expected.
 *
 * <p>Shapes are torch shapes: GGUF stores {@code ne} with the contiguous dimension first, so the torch shape is {@code ne}
 * reversed, except where the KV {@code comfy.gguf.orig_shape.<name>} (an array of integers in torch order) gives the shape
 * a tensor takes after dequantization (ComfyUI-GGUF stores such tensors flattened).
 */
public record GgufHeader(Path file, long fileSize, long version, Map<String, Object> metadata, Map<String, Info> tensors,
                         long alignment, long dataStart) {

    /** One tensor: its torch shape, ggml type, and bytes {@code [begin, end)} relative to the data section. */
    public record Info(String name, GgufType type, long[] shape, long[] ne, long begin, long end) {
        public long numel() {
            return TensorInfo.numel(shape);
        }

        public long byteLength() {
            return end - begin;
        }
    }

    static final long MAGIC = 0x46554747L; // "GGUF" little-endian
    public static final String ALIGNMENT_KEY = "general.alignment";
    public static final String ORIG_SHAPE_PREFIX = "comfy.gguf.orig_shape.";
    static final int DEFAULT_ALIGNMENT = 32;
    /** GGML_MAX_DIMS is 4; ComfyUI-GGUF writes 5-D Conv3d weights. */
    static final int MAX_DIMS = 8;
    /** Strings (keys, names, values) above this length are refused as corrupt. */
    static final long MAX_STRING = 1L << 24;
    static final int MAX_NESTING = 4;

    /** Value types of the metadata. */
    static final int U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7, STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12;

    /** Reads and validates the header of {@code file}. */
    public static GgufHeader read(Path file) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            return parse(file, size, (pos, dst) -> ch.read(dst, pos));
        } catch (NoSuchFileException e) {
            throw new ModelFormatException(file + ": no such file");
        } catch (IOException e) {
            throw new ModelFormatException(file + ": cannot read: " + FileErrors.reason(e), e);
        }
    }

    /** The header of a file of {@code fileSize} bytes whose first bytes are {@code start}: {@link #read} without the file (tests, fuzzing). */
    public static GgufHeader parse(Path file, long fileSize, byte[] start) {
        try {
            return parse(file, fileSize, (pos, dst) -> {
                if (pos >= start.length) return -1;
                int n = (int) Math.min(dst.remaining(), start.length - pos);
                dst.put(start, (int) pos, n);
                return n;
            });
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Reads bytes at a position into a buffer; -1 at the end. */
    interface Source {
        int read(long position, ByteBuffer dst) throws IOException;
    }

    static GgufHeader parse(Path file, long fileSize, Source source) throws IOException {
        Cursor in = new Cursor(file, fileSize, source);
        long magic = in.u32("the magic number");
        if (magic != MAGIC) {
            throw in.error("not a GGUF file: it starts with " + String.format("%08x", Integer.reverseBytes((int) magic))
                    + ", expected the magic 47475546 (\"GGUF\")");
        }
        long version = in.u32("the version");
        if (version != 3) {
            String why = Integer.reverseBytes((int) version) == 3 ? " (a big-endian GGUF file, which is not supported)" : "";
            throw in.error("GGUF version " + version + why + " is not supported (expected 3)");
        }
        long nTensors = in.count("the tensor count", 8 + 4 + 8 + 4 + 8); // each info takes at least a name, n_dims, one dim, type, offset
        long nKv = in.count("the metadata count", 8 + 4 + 1);
        Map<String, Object> kv = new LinkedHashMap<>();
        for (long i = 0; i < nKv; i++) {
            String key = in.string("metadata key " + i);
            long type = in.u32("the type of metadata " + FileErrors.quote(key));
            Object value = in.value(type, "metadata " + FileErrors.quote(key), 0);
            if (kv.put(key, value) != null) throw in.error("metadata key " + FileErrors.quote(key) + " appears twice");
        }
        long alignment = alignment(in, kv);

        
        Map<String, Info> infos = new TreeMap<>();
        List<Info> ordered = new ArrayList<>();
        for (long i = 0; i < nTensors; i++) {
            String name = in.string("the name of tensor " + i);
            String what = "tensor " + FileErrors.quote(name);
            long nDims = in.u32("the dimension count of " + what);
            if (nDims < 1 || nDims > MAX_DIMS) throw in.error(what + " has " + nDims + " dimensions, expected 1.." + MAX_DIMS);
            long[] ne = new long[(int) nDims];
            for (int d = 0; d < nDims; d++) {
                ne[d] = in.u64("dimension " + d + " of " + what);
                if (ne[d] < 0) throw in.error(what + ": dimension " + d + " is " + Long.toUnsignedString(ne[d]) + ", too large");
            }
            long typeId = in.u32("the type of " + what);
            long offset = in.u64("the data offset of " + what);
            GgufType type = GgufType.ofId(typeId);
            if (type == null) {
                throw in.error(what + " has unknown GGML type id " + typeId + " (supported: " + GgufType.supportedList() + ")");
            }
            if (!type.supported()) {
                throw in.error(what + " is stored as " + type + " (GGML type " + typeId + "), which mmdit4j does not read (supported: "
                        + GgufType.supportedList() + ")");
            }
            Info t = tensor(in, kv, name, type, ne, offset);
            if (infos.put(name, t) != null) throw in.error(what + " appears twice");
            ordered.add(t);

        }
        long headerEnd = in.position();
        long dataStart = Math.addExact(headerEnd, (alignment - headerEnd % alignment) % alignment);
        if (dataStart > fileSize) {
            throw in.error("the header ends at byte " + headerEnd + " and the data section would start at " + dataStart
                    + ", past the end of the file (" + fileSize + " bytes): the file is truncated");
        }
        checkLayout(in, ordered, fileSize - dataStart, alignment);
        for (String k : kv.keySet()) {
            if (k.startsWith(ORIG_SHAPE_PREFIX) && !infos.containsKey(k.substring(ORIG_SHAPE_PREFIX.length()))) {
                throw in.error("metadata " + FileErrors.quote(k) + " gives the shape of a tensor the file does not hold");
            }
        }
        return new GgufHeader(file, fileSize, version, Collections.unmodifiableMap(kv), Collections.unmodifiableMap(infos), alignment, dataStart);
    }

    private static long alignment(Cursor in, Map<String, Object> kv) {
        Object a = kv.get(ALIGNMENT_KEY);
        if (a == null) return DEFAULT_ALIGNMENT;
        if (!(a instanceof Long v) || v <= 0 || Long.bitCount(v) != 1 || v > (1L << 30)) {
            throw in.error("metadata " + FileErrors.quote(ALIGNMENT_KEY) + " is " + describe(a) + ", expected a power of two (an integer; default 32)");
        }
        return v;
    }

    /** The torch shape and byte range of one tensor, checked against its type. */
    private static Info tensor(Cursor in, Map<String, Object> kv, String name, GgufType type, long[] ne, long offset) {
        String what = "tensor " + FileErrors.quote(name);
        long numel = 1;
        for (long d : ne) {
            try {
                numel = Math.multiplyExact(numel, d);
            } catch (ArithmeticException e) {
                throw in.error(what + ": dimensions " + Arrays.toString(ne) + " are too large");
            }
        }
        if (ne[0] % type.blockElements() != 0) {
            throw in.error(what + " is " + type + " with rows of " + ne[0] + " elements, which is not a whole number of its "
                    + type.blockElements() + "-element blocks");
        }
        long bytes;
        try {
            bytes = type.bytes(numel);
        } catch (ArithmeticException e) {
            throw in.error(what + ": dimensions " + Arrays.toString(ne) + " are too large");
        }
        long[] shape = reversed(ne);
        Object orig = kv.get(ORIG_SHAPE_PREFIX + name);
        if (orig != null) shape = origShape(in, what, orig, numel);
        if (offset < 0 || offset > Long.MAX_VALUE - bytes) {
            throw in.error(what + ": data offset " + Long.toUnsignedString(offset) + " lies outside the file");
        }
        return new Info(name, type, shape, ne, offset, offset + bytes);
    }

    private static long[] origShape(Cursor in, String what, Object orig, long numel) {
        String key = "metadata " + FileErrors.quote(ORIG_SHAPE_PREFIX + what.substring("tensor ".length()).replace("'", ""));
        if (!(orig instanceof List<?> list) || list.isEmpty() || list.size() > MAX_DIMS) {
            throw in.error(key + " is " + describe(orig) + ", expected an array of 1.." + MAX_DIMS + " integers (the torch shape)");
        }
        long[] shape = new long[list.size()];
        long n = 1;
        for (int i = 0; i < shape.length; i++) {
            if (!(list.get(i) instanceof Long v) || v < 0) throw in.error(key + " is " + describe(orig) + ", expected non-negative integers");
            shape[i] = v;
            try {
                n = Math.multiplyExact(n, v);
            } catch (ArithmeticException e) {
                throw in.error(key + " " + Arrays.toString(shape) + " is too large");
            }
        }
        if (n != numel) {
            throw in.error(key + " " + Arrays.toString(shape) + " holds " + n + " elements, but " + what + " holds " + numel);
        }
        return shape;
    }

    private static void checkLayout(Cursor in, List<Info> tensors, long dataLength, long alignment) {
        List<Info> sorted = new ArrayList<>(tensors);
        sorted.sort(Comparator.comparingLong(Info::begin).thenComparingLong(Info::end));
        Info prev = null;
        for (Info t : sorted) {
            String what = "tensor " + FileErrors.quote(t.name());
            if (t.begin() % alignment != 0) {
                throw in.error(what + ": data offset " + t.begin() + " is not a multiple of the alignment " + alignment);
            }
            if (t.end() > dataLength) {
                throw in.error(what + " (" + t.type() + " " + Arrays.toString(t.shape()) + ", " + t.byteLength() + " bytes at data offset "
                        + t.begin() + ") ends past the data section (" + dataLength + " bytes): the file is truncated");
            }
            if (prev != null && t.byteLength() > 0 && t.begin() < prev.end()) {
                throw in.error(what + " [" + t.begin() + ", " + t.end() + ") overlaps tensor " + FileErrors.quote(prev.name()) + " ["
                        + prev.begin() + ", " + prev.end() + "): its data would be " + prev.byteLength() + " bytes for "
                        + prev.type() + " " + Arrays.toString(prev.shape()) + ", so the sizes disagree with the offsets");
            }
            if (t.byteLength() > 0) prev = t;
        }
    }

    static long[] reversed(long[] ne) {
        long[] s = new long[ne.length];
        for (int i = 0; i < ne.length; i++) s[i] = ne[ne.length - 1 - i];
        return s;
    }

    static String describe(Object v) {
        if (v instanceof String s) return "the string " + FileErrors.quote(s.length() > 40 ? s.substring(0, 40) + "..." : s);
        if (v instanceof List<?> l) return "an array of " + l.size();
        return String.valueOf(v);
    }

    /** The metadata value {@code key} as a string, or null. */
    public String string(String key) {
        return metadata.get(key) instanceof String s ? s : null;
    }

    /** Sequential reading of the header with bounds: nothing is allocated beyond what the file's remaining bytes can hold. */
    private static final class Cursor {
        private final Path file;
        private final long size;
        private final Source source;
        private final ByteBuffer buf = ByteBuffer.allocate(1 << 16).order(ByteOrder.LITTLE_ENDIAN);
        private long bufStart; // file position of buf[0]
        private long pos;

        Cursor(Path file, long size, Source source) {
            this.file = file;
            this.size = size;
            this.source = source;
            buf.limit(0);
        }

        long position() {
            return pos;
        }

        ModelFormatException error(String what) {
            return new ModelFormatException(file + ": " + what);
        }

        /** Makes {@code n} bytes at {@code pos} available in the buffer (n at most the buffer's capacity). */
        private void need(long n, String what) throws IOException {
            if (n > size - pos) {
                throw error("the file ends inside its header, in " + what + " (at byte " + pos + " of " + size + "): the file is truncated");
            }
            if (pos >= bufStart && pos + n <= bufStart + buf.limit()) return;
            buf.clear();
            bufStart = pos;
            while (buf.position() < n) {
                int r = source.read(bufStart + buf.position(), buf);
                if (r < 0) throw error("the file ends inside its header, in " + what + " (it changed while being read?)");
            }
            buf.flip();
        }

        private int at() {
            return (int) (pos - bufStart);
        }

        long u8(String what) throws IOException {
            need(1, what);
            long v = buf.get(at()) & 0xFF;
            pos += 1;
            return v;
        }

        long u16(String what) throws IOException {
            need(2, what);
            long v = buf.getShort(at()) & 0xFFFF;
            pos += 2;
            return v;
        }

        long u32(String what) throws IOException {
            need(4, what);
            long v = buf.getInt(at()) & 0xFFFFFFFFL;
            pos += 4;
            return v;
        }

        long u64(String what) throws IOException {
            need(8, what);
            long v = buf.getLong(at());
            pos += 8;
            return v;
        }

        /** A count of items each taking at least {@code minBytes}: refused when the rest of the file cannot hold them. */
        long count(String what, long minBytes) throws IOException {
            long n = u64(what);
            if (n < 0 || n > (size - pos) / minBytes) {
                throw error(what + " is " + Long.toUnsignedString(n) + ", more than the rest of the file (" + (size - pos)
                        + " bytes) can hold: the file is truncated or its header corrupt");
            }
            return n;
        }

        String string(String what) throws IOException {
            long len = u64("the length of " + what);
            if (len < 0 || len > MAX_STRING || len > size - pos) {
                throw error(what + ": string length " + Long.toUnsignedString(len) + " exceeds " + (len > MAX_STRING && len <= size - pos
                        ? "the " + MAX_STRING + "-byte limit" : "the rest of the file (" + (size - pos) + " bytes)"));
            }
            byte[] bytes = new byte[(int) len];
            for (int done = 0; done < len; ) {
                int n = (int) Math.min(len - done, buf.capacity());
                need(n, what);
                buf.get(at(), bytes, done, n);
                pos += n;
                done += n;
            }
            CharsetDecoder utf8 = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
            CharBuffer out = CharBuffer.allocate(bytes.length);
            CoderResult r = utf8.decode(ByteBuffer.wrap(bytes), out, true);
            if (!r.isError()) r = utf8.flush(out);
            if (r.isError()) throw error(what + " is not valid UTF-8");
            return out.flip().toString();
        }

        Object value(long type, String what, int depth) throws IOException {
            switch ((int) Math.min(type, Integer.MAX_VALUE)) {
                case U8: return u8(what);
                case I8: return (long) (byte) u8(what);
                case U16: return u16(what);
                case I16: return (long) (short) u16(what);
                case U32: return u32(what);
                case I32: return (long) (int) u32(what);
                case F32: return (double) Float.intBitsToFloat((int) u32(what));
                case BOOL: {
                    long b = u8(what);
                    if (b > 1) throw error(what + " is a bool of value " + b + ", expected 0 or 1");
                    return b == 1;
                }
                case STRING: return string(what);
                case ARRAY: {
                    if (depth >= MAX_NESTING) throw error(what + ": arrays nested deeper than " + MAX_NESTING);
                    long elementType = u32("the element type of " + what);
                    long n = count("the length of " + what, minBytes(elementType, what));
                    List<Object> list = new ArrayList<>((int) Math.min(n, 1 << 16));
                    for (long i = 0; i < n; i++) list.add(value(elementType, what + "[" + i + "]", depth + 1));
                    return Collections.unmodifiableList(list);
                }
                case U64: {
                    long v = u64(what);
                    return v >= 0 ? (Object) v : (Object) Long.toUnsignedString(v); // beyond a long: kept as text
                }
                case I64: return u64(what);
                case F64: return Double.longBitsToDouble(u64(what));
                default:
                    throw error(what + " has unknown value type " + type + " (expected 0..12)");
            }
        }

        private long minBytes(long type, String what) {
            switch ((int) Math.min(type, Integer.MAX_VALUE)) {
                case U8: case I8: case BOOL: return 1;
                case U16: case I16: return 2;
                case U32: case I32: case F32: return 4;
                case U64: case I64: case F64: case STRING: return 8;
                case ARRAY: return 12;
                default: throw error(what + " is an array of unknown value type " + type + " (expected 0..12)");
            }
        }
    }
}
