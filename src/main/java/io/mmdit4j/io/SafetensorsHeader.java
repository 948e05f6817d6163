package io.mmdit4j.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.mmdit4j.runtime.DType;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
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
            readFully(ch, lenBuf, 0);
            long headerLength = lenBuf.flip().getLong();
            if (headerLength < 2 || headerLength > size - 8) {
                throw error(file, "header length " + Long.toUnsignedString(headerLength) + " does not fit the file ("
                        + size + " bytes: expected at most " + (size - 8) + "); the file is truncated or not safetensors");
            }
            if (headerLength > MAX_HEADER_BYTES) {
                throw error(file, "header length " + headerLength + " exceeds the " + MAX_HEADER_BYTES + "-byte limit");
            }
            ByteBuffer json = ByteBuffer.allocate((int) headerLength);
            readFully(ch, json, 8);
            String text = new String(json.array(), StandardCharsets.UTF_8);
            return parse(file, size, headerLength, text);
        } catch (NoSuchFileException e) {
            throw new ModelFormatException(file + ": no such file");
        } catch (IOException e) {
            throw new ModelFormatException(file + ": cannot read: " + e.getMessage(), e);
        }
    }

    private static void readFully(FileChannel ch, ByteBuffer buf, long pos) throws IOException {
        while (buf.hasRemaining()) {
            int n = ch.read(buf, pos + buf.position());
            if (n < 0) throw new IOException("unexpected end of file");
        }
    }

    static SafetensorsHeader parse(Path file, long fileSize, long headerLength, String text) {
        JsonNode root;
        try {
            root = JSON.readTree(text);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw error(file, "header is not valid JSON: " + e.getOriginalMessage());
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
                if (!v.isObject()) throw error(file, "__metadata__ must be an object of strings");
                v.fields().forEachRemaining(m -> metadata.put(m.getKey(), m.getValue().asText()));
                continue;
            }
            tensors.put(name, entry(file, name, v, dataLength));
        }
        checkOverlaps(file, tensors.values());
        return new SafetensorsHeader(file, fileSize, headerLength, Collections.unmodifiableMap(tensors),
                Collections.unmodifiableMap(metadata));
    }

    private static TensorInfo entry(Path file, String name, JsonNode v, long dataLength) {
        if (!v.isObject()) throw error(file, "tensor '" + name + "': entry must be an object");
        JsonNode dt = v.get("dtype");
        if (dt == null || !dt.isTextual()) throw error(file, "tensor '" + name + "': missing dtype");
        DType dtype = DType.fromSafetensors(dt.asText());
        if (dtype == null) {
            throw error(file, "tensor '" + name + "' has unsupported dtype '" + dt.asText() + "' (expected one of "
                    + Arrays.toString(Arrays.stream(DType.values()).map(DType::safetensorsName).toArray()) + ")");
        }
        JsonNode sh = v.get("shape");
        if (sh == null || !sh.isArray()) throw error(file, "tensor '" + name + "': missing shape");
        long[] shape = new long[sh.size()];
        long numel = 1;
        for (int i = 0; i < shape.length; i++) {
            JsonNode d = sh.get(i);
            if (!d.canConvertToLong() || !d.isIntegralNumber() || d.asLong() < 0) {
                throw error(file, "tensor '" + name + "': shape " + sh + " must hold non-negative integers");
            }
            shape[i] = d.asLong();
            try {
                numel = Math.multiplyExact(numel, shape[i]);
            } catch (ArithmeticException ex) {
                throw error(file, "tensor '" + name + "': shape " + sh + " is too large");
            }
        }
        JsonNode off = v.get("data_offsets");
        if (off == null || !off.isArray() || off.size() != 2 || !off.get(0).isIntegralNumber()
                || !off.get(1).isIntegralNumber()) {
            throw error(file, "tensor '" + name + "': data_offsets must be [begin, end]");
        }
        long begin = off.get(0).asLong();
        long end = off.get(1).asLong();
        if (begin < 0 || end < begin) {
            throw error(file, "tensor '" + name + "': data_offsets [" + begin + ", " + end + "] are not a valid range");
        }
        if (end > dataLength) {
            throw error(file, "tensor '" + name + "': data_offsets [" + begin + ", " + end + "] lie outside the data section ("
                    + dataLength + " bytes); the file is truncated or corrupt");
        }
        long expected;
        try {
            expected = Math.multiplyExact(numel, dtype.bytes());
        } catch (ArithmeticException ex) {
            throw error(file, "tensor '" + name + "': shape is too large");
        }
        if (end - begin != expected) {
            throw error(file, "tensor '" + name + "': data_offsets [" + begin + ", " + end + "] hold " + (end - begin)
                    + " bytes, but " + dtype.safetensorsName() + " " + Arrays.toString(shape) + " needs " + expected);
        }
        return new TensorInfo(name, dtype, shape, begin, end);
    }

    private static void checkOverlaps(Path file, Iterable<TensorInfo> infos) {
        List<TensorInfo> sorted = new ArrayList<>();
        infos.forEach(sorted::add);
        sorted.sort(Comparator.comparingLong(TensorInfo::begin).thenComparingLong(TensorInfo::end));
        TensorInfo prev = null;
        for (TensorInfo t : sorted) {
            if (t.byteLength() == 0) continue;
            if (prev != null && t.begin() < prev.end()) {
                throw error(file, "tensors '" + prev.name() + "' [" + prev.begin() + ", " + prev.end() + ") and '" + t.name()
                        + "' [" + t.begin() + ", " + t.end() + ") overlap");
            }
            prev = t;
        }
    }

    private static ModelFormatException error(Path file, String what) {
        return new ModelFormatException(file + ": " + what);
    }
}
