package io.mmdit4j.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.mmdit4j.runtime.DType;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.CharBuffer;
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
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The parsed and fully validated header of a safetensors file. Everything that could make a later
 * native call read outside the file is checked here, in Java, before any tensor is created.
 */
public record SafetensorsHeader(Path file, long fileSize, long headerLength, Map<String, TensorInfo> tensors,
                                Map<String, String> metadata) {

    /** Headers above this size are rejected as corrupt (real checkpoints stay below a few MB). */
    static final long MAX_HEADER_BYTES = 100L << 20;
    /** Strict: trailing garbage and duplicate tensor names are corrupt headers, not "last one wins". */
    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(com.fasterxml.jackson.databind.DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .enable(com.fasterxml.jackson.core.JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

    /** Start of the data section in the file. */
    public long dataStart() {
        return 8 + headerLength;
    }

    public long dataLength() {
        return fileSize - dataStart();
    }

    public static SafetensorsHeader read(Path file) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < 8) {
                throw error(file, "file is " + size + " bytes, too short for a safetensors header (expected at least 8)");
            }
            ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            readFully(file, ch, lenBuf, 0);
            long headerLength = lenBuf.flip().getLong();
            checkLength(file, size, headerLength);
            ByteBuffer json = ByteBuffer.allocate((int) headerLength);
            readFully(file, ch, json, 8);
            return decode(file, size, headerLength, json.array());
        } catch (NoSuchFileException e) {
            throw new ModelFormatException(file + ": no such file");
        } catch (IOException e) {
            throw new ModelFormatException(file + ": cannot read: " + FileErrors.reason(e), e);
        }
    }

    /**
     * The header of a file of {@code fileSize} bytes whose first bytes are {@code start} (the length prefix and at least
     * the header): {@link #read} without the file, for tests and fuzzing.
     */
    static SafetensorsHeader parse(Path file, long fileSize, byte[] start) {
        if (fileSize < 8 || start.length < 8) {
            throw error(file, "file is " + Math.min(fileSize, start.length) + " bytes, too short for a safetensors header (expected at least 8)");
        }
        long headerLength = ByteBuffer.wrap(start, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        checkLength(file, fileSize, headerLength);
        if (start.length - 8 < headerLength) throw error(file, "the file ends inside its header");
        return decode(file, fileSize, headerLength, Arrays.copyOfRange(start, 8, 8 + (int) headerLength));
    }

    private static void checkLength(Path file, long size, long headerLength) {
        if (headerLength < 2 || headerLength > size - 8) {
            throw error(file, "header length " + Long.toUnsignedString(headerLength) + " does not fit the file ("
                    + size + " bytes: expected at most " + (size - 8) + "); the file is truncated or not safetensors");
        }
        if (headerLength > MAX_HEADER_BYTES) {
            throw error(file, "header length " + headerLength + " exceeds the " + MAX_HEADER_BYTES + "-byte limit");
        }
    }

    private static void readFully(Path file, FileChannel ch, ByteBuffer buf, long pos) throws IOException {
        while (buf.hasRemaining()) {
            int n = ch.read(buf, pos + buf.position());
            if (n < 0) throw error(file, "the file ends inside its header (it changed while being read?)");
        }
    }

    /** The format says UTF-8 JSON: malformed bytes are a corrupt header, not U+FFFD in a tensor name. */
    private static SafetensorsHeader decode(Path file, long fileSize, long headerLength, byte[] header) {
        CharsetDecoder utf8 = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(header);
        CharBuffer out = CharBuffer.allocate(header.length);
        CoderResult r = utf8.decode(in, out, true);
        if (!r.isError()) r = utf8.flush(out);
        if (r.isError()) {
            throw error(file, "header is not valid UTF-8 (bytes " + hex(header, in.position(), r.length()) + " at header offset "
                    + in.position() + "); the safetensors format requires UTF-8 JSON");
        }
        return parse(file, fileSize, headerLength, out.flip().toString());
    }

    private static String hex(byte[] b, int from, int n) {
        StringBuilder s = new StringBuilder();
        for (int i = from; i < Math.min(b.length, from + Math.min(n, 4)); i++) s.append(String.format("%02x", b[i] & 0xff));
        return s.toString();
    }

    static SafetensorsHeader parse(Path file, long fileSize, long headerLength, String text) {
        JsonNode root;
        try {
            root = JSON.readTree(text);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw error(file, "header is not valid JSON: " + FileErrors.printable(e.getOriginalMessage()));
        }
        if (root == null || !root.isObject()) throw error(file, "header must be a JSON object");
        long dataLength = fileSize - 8 - headerLength;
        Map<String, TensorInfo> tensors = new TreeMap<>();
        Map<String, String> metadata = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            String name = e.getKey();
            JsonNode v = e.getValue();
            if (name.equals("__metadata__")) {
                if (!v.isObject()) throw error(file, "__metadata__ must be an object of strings, found " + kind(v));
                v.fields().forEachRemaining(m -> {
                    if (!m.getValue().isTextual()) {
                        throw error(file, "__metadata__ value of " + FileErrors.quote(m.getKey()) + " must be a string, found "
                                + kind(m.getValue()) + " (the safetensors format allows only string metadata)");
                    }
                    metadata.put(m.getKey(), m.getValue().textValue());
                });
                continue;
            }
            tensors.put(name, entry(file, name, v, dataLength));
        }
        checkOverlaps(file, tensors.values());
        return new SafetensorsHeader(file, fileSize, headerLength, Collections.unmodifiableMap(tensors),
                Collections.unmodifiableMap(metadata));
    }

    private static TensorInfo entry(Path file, String name, JsonNode v, long dataLength) {
        String tensor = "tensor " + FileErrors.quote(name);
        if (!v.isObject()) throw error(file, tensor + ": entry must be an object, found " + kind(v));
        JsonNode dt = v.get("dtype");
        if (dt == null || !dt.isTextual()) throw error(file, tensor + ": missing dtype");
        DType dtype = DType.fromSafetensors(dt.textValue());
        if (dtype == null) {
            throw error(file, tensor + " has unsupported dtype " + FileErrors.quote(dt.textValue()) + " (expected one of "
                    + Arrays.toString(Arrays.stream(DType.values()).map(DType::safetensorsName).toArray()) + ")");
        }
        JsonNode sh = v.get("shape");
        if (sh == null || !sh.isArray()) throw error(file, tensor + ": missing shape");
        long[] shape = new long[sh.size()];
        long numel = 1;
        for (int i = 0; i < shape.length; i++) {
            JsonNode d = sh.get(i);
            if (!d.isIntegralNumber() || !d.canConvertToLong() || d.longValue() < 0) {
                throw error(file, tensor + ": shape " + clip(sh) + " must hold non-negative integers");
            }
            shape[i] = d.longValue();
            try {
                numel = Math.multiplyExact(numel, shape[i]);
            } catch (ArithmeticException ex) {
                throw error(file, tensor + ": shape " + clip(sh) + " is too large");
            }
        }
        JsonNode off = v.get("data_offsets");
        if (off == null || !off.isArray() || off.size() != 2 || !off.get(0).isIntegralNumber()
                || !off.get(1).isIntegralNumber()) {
            throw error(file, tensor + ": data_offsets must be [begin, end]");
        }
        // Jackson reads numbers past 2^63 as BigIntegers whose asLong() wraps modulo 2^64: [2^64, 2^64 + 16] became [0, 16].
        if (!off.get(0).canConvertToLong() || !off.get(1).canConvertToLong()) {
            throw error(file, tensor + ": data_offsets " + clip(off) + " lie outside the data section (" + dataLength
                    + " bytes); the file is corrupt");
        }
        long begin = off.get(0).longValue();
        long end = off.get(1).longValue();
        if (begin < 0 || end < begin) {
            throw error(file, tensor + ": data_offsets [" + begin + ", " + end + "] are not a valid range");
        }
        if (end > dataLength) {
            throw error(file, tensor + ": data_offsets [" + begin + ", " + end + "] lie outside the data section ("
                    + dataLength + " bytes); the file is truncated or corrupt");
        }
        long expected;
        try {
            expected = Math.multiplyExact(numel, dtype.bytes());
        } catch (ArithmeticException ex) {
            throw error(file, tensor + ": shape is too large");
        }
        if (end - begin != expected) {
            throw error(file, tensor + ": data_offsets [" + begin + ", " + end + "] hold " + (end - begin)
                    + " bytes, but " + dtype.safetensorsName() + " " + Arrays.toString(shape) + " needs " + expected);
        }
        return new TensorInfo(name, dtype, shape, begin, end);
    }

    /** A JSON value for a message: at most 100 characters of it, control characters escaped. */
    private static String clip(JsonNode v) {
        String s = v.toString();
        return FileErrors.printable(s.length() > 100 ? s.substring(0, 100) + "..." : s);
    }

    /** What a JSON value is, for "expected X, found Y" messages. */
    static String kind(JsonNode v) {
        if (v.isTextual()) return "a string";
        if (v.isNumber()) return "a number (" + clip(v) + ")";
        if (v.isBoolean()) return v.asText();
        if (v.isNull()) return "null";
        if (v.isArray()) return "an array";
        return "an object";
    }

    private static void checkOverlaps(Path file, Iterable<TensorInfo> infos) {
        List<TensorInfo> sorted = new ArrayList<>();
        infos.forEach(sorted::add);
        sorted.sort(Comparator.comparingLong(TensorInfo::begin).thenComparingLong(TensorInfo::end));
        TensorInfo prev = null;
        for (TensorInfo t : sorted) {
            if (t.byteLength() == 0) continue;
            if (prev != null && t.begin() < prev.end()) {
                throw error(file, "tensors " + FileErrors.quote(prev.name()) + " [" + prev.begin() + ", " + prev.end() + ") and "
                        + FileErrors.quote(t.name()) + " [" + t.begin() + ", " + t.end() + ") overlap");
            }
            prev = t;
        }
    }

    private static ModelFormatException error(Path file, String what) {
        return new ModelFormatException(file + ": " + what);
    }
}
