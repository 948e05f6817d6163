package io.mmdit4j.io;

import io.mmdit4j.pipeline.LoadOptions;
import io.mmdit4j.pipeline.Pipelines;
import io.mmdit4j.pipeline.UnknownModelException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

/**
 * What the loaders used to accept or report badly: offsets past 2^64, headers that are not UTF-8, metadata that is not
 * strings, shard indexes naming impossible paths, unreadable files, folders without model_index.json. Each case fails
 * with one message naming the file, the key, and expected versus found.
 */
class LoaderStrictnessTest {
    @TempDir
    Path tmp;

    private Path raw(String name, byte[] header, int dataBytes) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(8 + header.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(header.length).put(header);
        return Files.write(tmp.resolve(name), b.array());
    }

    private Path raw(String name, String header, int dataBytes) throws IOException {
        return raw(name, header.getBytes(StandardCharsets.UTF_8), dataBytes);
    }

    private static String bad(Executable e, Path file, String... fragments) {
        ModelFormatException ex = assertThrows(ModelFormatException.class, e);
        String m = ex.getMessage();
        assertTrue(m.startsWith(file.toString()), () -> "message should start with the file " + file + ": " + m);
        for (String f : fragments) assertTrue(m.contains(f), () -> "message should contain '" + f + "': " + m);
        assertTrue(m.chars().noneMatch(c -> c < 0x20), () -> "raw control character in: " + m);
        return m;
    }

    @Test
    void offsetsPast2To64DoNotWrapRound() throws IOException {
        // 2^64 and 2^64 + 16 used to read as [0, 16]: a valid-looking tensor at the wrong place.
        Path f = raw("wrap.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[18446744073709551616,18446744073709551632]}}", 16);
        bad(() -> SafetensorsFile.open(f), f, "tensor 'a'", "data_offsets [18446744073709551616,18446744073709551632]", "outside the data section (16 bytes)");
        Path g = raw("high.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,9223372036854775808]}}", 16);
        bad(() -> SafetensorsFile.open(g), g, "tensor 'a'", "outside the data section");
        Path h = raw("float.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16.0]}}", 16);
        bad(() -> SafetensorsFile.open(h), h, "tensor 'a'", "data_offsets must be [begin, end]");
    }

    @Test
    void headerMustBeUtf8() throws IOException {
        byte[] header = "{\"a?\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}".getBytes(StandardCharsets.US_ASCII);
        header[3] = (byte) 0xff; // used to become U+FFFD in the tensor's name
        Path f = raw("latin.safetensors", header, 4);
        bad(() -> SafetensorsFile.open(f), f, "header is not valid UTF-8", "ff at header offset 3", "requires UTF-8 JSON");
        byte[] overlong = "{\"a??\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}".getBytes(StandardCharsets.US_ASCII);
        overlong[3] = (byte) 0xc0; // an overlong encoding of '/'
        overlong[4] = (byte) 0xaf;
        Path g = raw("overlong.safetensors", overlong, 4);
        bad(() -> SafetensorsFile.open(g), g, "not valid UTF-8");
        // Real UTF-8 names are fine.
        Path ok = raw("utf8.safetensors", "{\"\u72fc\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
        try (SafetensorsFile sf = SafetensorsFile.open(ok)) {
            assertTrue(sf.keys().contains("\u72fc"));
        }
    }

    @Test
    void metadataValuesMustBeStrings() throws IOException {
        for (String value : new String[] {"1", "true", "null", "{\"x\":\"y\"}", "[\"a\"]"}) {
            Path f = raw("meta" + Math.abs(value.hashCode()) + ".safetensors", "{\"__metadata__\":{\"format\":\"pt\",\"n\":" + value + "}}", 0);
            bad(() -> SafetensorsFile.open(f), f, "__metadata__ value of 'n' must be a string, found", "only string metadata");
        }
        Path ok = raw("meta.safetensors", "{\"__metadata__\":{\"format\":\"pt\",\"n\":\"1\"}}", 0);
        try (SafetensorsFile sf = SafetensorsFile.open(ok)) {
            assertEquals("1", sf.header().metadata().get("n"));
        }
    }

    @Test
    void namesWithControlCharactersAreEscapedInMessages() throws IOException {
        Path f = raw("ctl.safetensors", "{\"a\\u0000\\u001b[2J\":{\"dtype\":\"X\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
        bad(() -> SafetensorsFile.open(f), f, "tensor 'a\\0\\u001b[2J' has unsupported dtype 'X'");
        Path g = raw("long.safetensors", "{\"" + "n".repeat(40_000) + "\":{\"dtype\":\"X\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
        String m = bad(() -> SafetensorsFile.open(g), g, "...' (40000 characters)");
        assertTrue(m.length() < 1000, "a 40,000-character name is cut in the message: " + m.length());
    }

    @Test
    void shardIndexNamingAPathWithNulIsAFormatError() throws IOException {
        // Used to escape as InvalidPathException ("Nul character not allowed") with the raw NUL in its message.
        Path dir = Files.createDirectories(tmp.resolve("nul"));
        Path index = Files.writeString(dir.resolve("model.safetensors.index.json"),
                "{\"weight_map\":{\"a\":\"model\\u0000-00001.safetensors\"}}");
        bad(() -> WeightFiles.open(dir), index, "weight_map names shard 'model\\0-00001.safetensors' (for 'a'), which is not a valid file name");
    }

    @Test
    void shardIndexMustMapKeysToFileNames() throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("shapes"));
        for (String v : new String[] {"3", "null", "{}", "[\"x\"]"}) {
            Path index = Files.writeString(dir.resolve("model.safetensors.index.json"), "{\"weight_map\":{\"a\":" + v + "}}");
            bad(() -> WeightFiles.open(dir), index, "weight_map puts 'a' in", "expected a shard file name");
        }
        for (String v : new String[] {"\"\"", "\".\"", "\"../x.safetensors\""}) {
            Path index = Files.writeString(dir.resolve("model.safetensors.index.json"), "{\"weight_map\":{\"a\":" + v + "}}");
            bad(() -> WeightFiles.open(dir), index, "points outside the folder");
        }
        Path index = dir.resolve("model.safetensors.index.json");
        Files.write(index, new byte[] {'{', '"', (byte) 0xff, '"', ':', '1', '}'});
        bad(() -> WeightFiles.open(dir), index, "shard index is not valid UTF-8");
        Files.writeString(index, "{\"weight_map\":{\"a\":\"x\"}} trailing");
        bad(() -> WeightFiles.open(dir), index, "shard index is not valid JSON");
    }

    @Test
    void unreadableFilesSayWhy() throws IOException {
        // "cannot read: PATH" named the file twice and gave no reason (AccessDeniedException's message is the path).
        Path f = Unreadable.file(tmp, "locked.safetensors");
        String m = bad(() -> SafetensorsFile.open(f), f, "cannot read: permission denied");
        assertEquals(1, m.split(java.util.regex.Pattern.quote(f.toString()), -1).length - 1, "the path once: " + m);
        Path dir = Files.createDirectories(tmp.resolve("sharded"));
        Path index = Unreadable.file(dir, "model.safetensors.index.json");
        bad(() -> WeightFiles.open(dir), index, "cannot read shard index: permission denied");
        Path config = Unreadable.file(tmp, "config.json");
        bad(() -> JsonConfigs.readObject(config), config, "cannot read config: permission denied");
    }

    @Test
    void unreadableFolderIsNotAFolderWithoutModelIndex() throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("locked"));
        Files.writeString(dir.resolve("model_index.json"), "{\"_class_name\":\"FluxPipeline\"}");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("---------"));
        try {
            assumeFalse(Files.isReadable(dir) && Files.isExecutable(dir), "this process reads chmod-000 folders (root)");
            UnknownModelException e = assertThrows(UnknownModelException.class, () -> Pipelines.prepare(dir.toString(), LoadOptions.defaults()));
            assertEquals(dir + ": cannot read folder: permission denied", e.getMessage());
        } finally {
            Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
        }
    }

    @Test
    void folderWithoutModelIndexSaysSo() throws IOException {
        // It used to say "a BFL transformer file needs --vae", for a folder.
        Path dir = Files.createDirectories(tmp.resolve("transformer"));
        Files.write(dir.resolve("diffusion_pytorch_model.safetensors"),
                ByteBuffer.allocate(8 + 2).order(ByteOrder.LITTLE_ENDIAN).putLong(2).put((byte) '{').put((byte) '}').array());
        Files.writeString(dir.resolve("config.json"), "{}");
        UnknownModelException e = assertThrows(UnknownModelException.class, () -> Pipelines.prepare(dir.toString(), LoadOptions.defaults()));
        assertTrue(e.getMessage().startsWith(dir + ": a folder without model_index.json (expected a diffusers pipeline folder"), e.getMessage());
        assertFalse(e.getMessage().contains("--vae"), e.getMessage());
        Path empty = Files.createDirectories(tmp.resolve("empty"));
        e = assertThrows(UnknownModelException.class, () -> Pipelines.prepare(empty.toString(), LoadOptions.defaults()));
        assertTrue(e.getMessage().contains("a folder without model_index.json"), e.getMessage());
    }

    @Test
    void fileErrorsReasonAndQuote() {
        assertEquals("permission denied", FileErrors.reason(new java.nio.file.AccessDeniedException("/x")));
        assertEquals("no such file", FileErrors.reason(new java.nio.file.NoSuchFileException("/x")));
        assertEquals("Is a directory", FileErrors.reason(new java.nio.file.FileSystemException("/x", null, "Is a directory")));
        assertEquals("disk on fire", FileErrors.reason(new IOException("disk on fire")));
        assertEquals("IOException", FileErrors.reason(new IOException()));
        assertEquals("'a\\0b\\u001b[0m\\n\\\\'", FileErrors.quote("a\0b\u001b[0m\n\\"));
        assertEquals("'\\u202e'", FileErrors.quote("\u202e")); // a bidi override, invisible and reordering
        assertEquals("'\\ud800'", FileErrors.quote("\ud800"));
        assertEquals("'\u72fc \u00e9'", FileErrors.quote("\u72fc \u00e9"));
        assertEquals("line 1\nline 2\t\\u001b", FileErrors.printable("line 1\nline 2\t\u001b"));
    }
}
