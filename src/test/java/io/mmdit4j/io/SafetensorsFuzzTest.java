package io.mmdit4j.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * 200,000 seeded mutations of safetensors headers (bytes, JSON tokens, numbers past 2^63 and 2^64, non-UTF-8 bytes,
 * non-string metadata, deep nesting, length prefixes and file sizes), and 2,000 of shard indexes: each either parses or
 * fails with a {@link ModelFormatException} whose message starts with the file; any other exception fails the test with
 * the seed that reproduces it. Deterministic; a few seconds.
 */
class SafetensorsFuzzTest {
    static final int HEADER_CASES = 200_000;
    static final int INDEX_CASES = 2_000;

    private static final Path FILE = Path.of("fuzz.safetensors");
    @TempDir
    Path tmp;

    /** Headers like the writer's (sorted keys, space padding to 8 bytes), with their data section sizes. */
    private record Seed(String header, long dataLength) {}

    private static final List<Seed> SEEDS = List.of(
            new Seed("{\"__metadata__\":{\"format\":\"pt\",\"note\":\"caf\u00e9 \u72fc\"},"
                    + "\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                    + "\"b\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[16,22]},"
                    + "\"c\":{\"dtype\":\"I64\",\"shape\":[0],\"data_offsets\":[22,22]}}   ", 22),
            new Seed("{\"transformer_blocks.0.attn.to_q.weight\":{\"dtype\":\"F16\",\"shape\":[4,4],\"data_offsets\":[0,32]},"
                    + "\"transformer_blocks.0.attn.to_q.bias\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[32,40]}}", 40),
            new Seed("{\"x\":{\"dtype\":\"U8\",\"shape\":[1,1,1,5],\"data_offsets\":[0,5]},\"__metadata__\":{}}", 5),
            new Seed("{}", 0));

    @Test
    void mutatedHeadersFailOnlyWithModelFormatException() {
        Random r = new Random(200_000);
        List<String> escaped = new ArrayList<>();
        int parsed = 0, refused = 0;
        long t0 = System.nanoTime();
        for (int i = 0; i < HEADER_CASES; i++) {
            long caseSeed = r.nextLong();
            Random cr = new Random(caseSeed);
            Seed seed = SEEDS.get(cr.nextInt(SEEDS.size()));
            byte[] header = JsonMutations.mutate(seed.header(), cr);
            long dataLength = cr.nextInt(8) == 0 ? Math.max(0, seed.dataLength() + cr.nextInt(41) - 20) : seed.dataLength();
            byte[] start = file(header, cr);
            long fileSize = 8 + header.length + dataLength;
            FuzzMessages.Outcome o = FuzzMessages.attempt(FILE, i, caseSeed, () -> {
                SafetensorsHeader h = SafetensorsHeader.parse(FILE, fileSize, start);
                return accepted(h, Arrays.copyOfRange(start, 8, 8 + (int) h.headerLength()), fileSize);
            }, escaped);
            if (o == FuzzMessages.Outcome.PARSED) parsed++;
            if (o == FuzzMessages.Outcome.REFUSED) refused++;
            if (escaped.size() > 10) break;
        }
        double s = (System.nanoTime() - t0) / 1e9;
        System.out.printf("SafetensorsFuzzTest: %d mutated headers in %.2f s: %d parsed, %d refused with ModelFormatException%n",
                HEADER_CASES, s, parsed, refused);
        if (!escaped.isEmpty()) fail("exceptions other than ModelFormatException, or unclear messages:\n" + String.join("\n", escaped));
        assertTrue(parsed > HEADER_CASES / 50 && refused > HEADER_CASES / 4, parsed + " parsed, " + refused + " refused");
        assertTrue(s < 60, "the header fuzz must stay well under a minute (3 s on 2 idle cores): " + s + " s");
    }

    /**
     * What is wrong with a header the parser accepted, checked independently of it (null: nothing): the bytes must be
     * UTF-8, every metadata value a string, every tensor's offsets the very numbers of the JSON (not wrapped past 2^64)
     * inside the data section and as long as its dtype and shape need.
     */
    private static String accepted(SafetensorsHeader h, byte[] header, long fileSize) {
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder().decode(ByteBuffer.wrap(header)).toString();
        } catch (java.nio.charset.CharacterCodingException e) {
            return "a header that is not UTF-8";
        }
        com.fasterxml.jackson.databind.JsonNode root;
        try {
            root = JSON.readTree(text);
        } catch (IOException e) {
            return "a header that is not JSON: " + e.getMessage();
        }
        long dataLength = fileSize - 8 - header.length;
        JsonNodeCheck meta = new JsonNodeCheck();
        root.path("__metadata__").fields().forEachRemaining(m -> {
            if (!m.getValue().isTextual()) meta.wrong = "metadata value " + m.getValue();
        });
        if (meta.wrong != null) return meta.wrong;
        for (TensorInfo t : h.tensors().values()) {
            com.fasterxml.jackson.databind.JsonNode off = root.get(t.name()).get("data_offsets");
            if (!new java.math.BigInteger(off.get(0).asText()).equals(java.math.BigInteger.valueOf(t.begin()))
                    || !new java.math.BigInteger(off.get(1).asText()).equals(java.math.BigInteger.valueOf(t.end()))) {
                return "offsets " + off + " as [" + t.begin() + ", " + t.end() + "]";
            }
            if (t.begin() < 0 || t.end() < t.begin() || t.end() > dataLength) return "offsets outside the data: " + off;
            if (t.byteLength() != t.numel() * t.dtype().bytes()) return "a byte length that does not fit the shape: " + t.name();
        }
        return null;
    }

    private static final com.fasterxml.jackson.databind.ObjectMapper JSON = new com.fasterxml.jackson.databind.ObjectMapper();

    private static final class JsonNodeCheck {
        String wrong;
    }

    /** The length prefix and the header; one case in ten gets a wrong or hostile length. */
    private static byte[] file(byte[] header, Random r) {
        long length = header.length;
        if (r.nextInt(10) == 0) {
            long[] lengths = {0, 1, 2, header.length - 1L, header.length + 1L, -1, Long.MIN_VALUE, Long.MAX_VALUE, 1L << 32,
                    SafetensorsHeader.MAX_HEADER_BYTES + 1, r.nextLong()};
            length = lengths[r.nextInt(lengths.length)];
        }
        ByteBuffer b = ByteBuffer.allocate(8 + header.length).order(ByteOrder.LITTLE_ENDIAN);
        return b.putLong(length).put(header).array();
    }

    /** Shard indexes naming paths with NUL, "..", absolute paths, non-strings, invalid UTF-8; through the real files. */
    @Test
    void mutatedShardIndexesFailOnlyWithModelFormatException() throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("sharded"));
        byte[] shard = ("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}").getBytes(StandardCharsets.UTF_8);
        Files.write(dir.resolve("model-00001-of-00001.safetensors"),
                ByteBuffer.allocate(8 + shard.length + 8).order(ByteOrder.LITTLE_ENDIAN).putLong(shard.length).put(shard).array());
        String index = "{\"metadata\":{\"total_size\":8},\"weight_map\":{\"a\":\"model-00001-of-00001.safetensors\","
                + "\"b\":\"model-00001-of-00001.safetensors\"}}";
        String[] names = {"\"model\\u0000.safetensors\"", "\"../model-00001-of-00001.safetensors\"", "\"/etc/passwd\"", "\"\"", "\".\"",
                "\"sub/../model-00001-of-00001.safetensors\"", "\"\\u001b[31mred\"", "\"" + "n".repeat(300) + "\"", "3", "null", "{}", "[]"};
        Path file = dir.resolve("model.safetensors.index.json");
        Random r = new Random(2_000);
        List<String> escaped = new ArrayList<>();
        int opened = 0;
        for (int i = 0; i < INDEX_CASES; i++) {
            long caseSeed = r.nextLong();
            Random cr = new Random(caseSeed);
            String text = cr.nextBoolean() ? JsonMutations.replace(index, JsonMutations.STRING, names[cr.nextInt(names.length)], cr) : index;
            Files.write(file, JsonMutations.mutate(text, cr));
            try {
                ShardedSafetensors.open(file).close();
                opened++;
            } catch (ModelFormatException e) {
                if (!e.getMessage().startsWith(file.toString())) escaped.add("case " + i + ": message does not name the index: " + e.getMessage());
                if (e.getMessage().indexOf('\0') >= 0 || e.getMessage().indexOf('\u001b') >= 0) escaped.add("case " + i + ": raw control character in " + e.getMessage());
            } catch (Throwable e) {
                escaped.add("case " + i + " (seed " + caseSeed + "): " + e);
            }
            if (escaped.size() > 10) break;
        }
        if (!escaped.isEmpty()) fail("exceptions other than ModelFormatException, or unclear messages:\n" + String.join("\n", escaped));
        assertTrue(opened > 0 && opened < INDEX_CASES, opened + " opened");
    }
}
