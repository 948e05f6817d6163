package io.mmdit4j.io;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.bytedeco.pytorch.Tensor;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/** A checkpoint split into shards by a {@code *.safetensors.index.json} ("weight_map": key to shard file). */
public final class ShardedSafetensors implements TensorSource {
    private final Path index;
    private final Map<String, SafetensorsFile> byKey;
    private final Map<String, SafetensorsFile> shards;

    private ShardedSafetensors(Path index, Map<String, SafetensorsFile> byKey, Map<String, SafetensorsFile> shards) {
        this.index = index;
        this.byKey = byKey;
        this.shards = shards;
    }

    /** Shard indexes above this size are rejected as corrupt (FLUX's is 120 KB). */
    static final long MAX_INDEX_BYTES = 64L << 20;
    /** Strict as the headers: duplicate keys and trailing garbage are a corrupt index, not "last one wins". */
    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

    public static ShardedSafetensors open(Path indexFile) {
        JsonNode map = weightMap(indexFile, readIndex(indexFile));
        Map<String, SafetensorsFile> shards = new LinkedHashMap<>();
        Map<String, SafetensorsFile> byKey = new TreeMap<>();
        Path folder = indexFile.toAbsolutePath().normalize().getParent();
        try {
            for (var it = map.fields(); it.hasNext(); ) {
                var e = it.next();
                String key = FileErrors.quote(e.getKey());
                if (!e.getValue().isTextual()) {
                    throw new ModelFormatException(indexFile + ": weight_map puts " + key + " in " + SafetensorsHeader.kind(e.getValue())
                            + ", expected a shard file name");
                }
                String shardName = e.getValue().textValue();
                Path shardPath = shardPath(indexFile, folder, shardName, key);
                if (!Files.isRegularFile(shardPath)) {
                    throw new ModelFormatException(indexFile + ": weight_map names shard " + FileErrors.quote(shardName) + " (for " + key
                            + "), but " + FileErrors.printable(shardPath.toString()) + (Files.exists(shardPath) ? " is not a file" : " does not exist"));
                }
                SafetensorsFile shard = shards.computeIfAbsent(shardName, n -> SafetensorsFile.open(shardPath));
                if (shard.info(e.getKey()) == null) {
                    throw new ModelFormatException(indexFile + ": weight_map puts " + key + " in " + FileErrors.quote(shardName)
                            + ", but that shard has no such tensor");
                }
                byKey.put(e.getKey(), shard);
            }
        } catch (RuntimeException ex) {
            shards.values().forEach(SafetensorsFile::close);
            throw ex;
        }
        return new ShardedSafetensors(indexFile, Collections.unmodifiableMap(byKey), shards);
    }

    /** The index as UTF-8 JSON, bounded in size; every failure a {@link ModelFormatException} naming the file. */
    private static JsonNode readIndex(Path indexFile) {
        byte[] bytes;
        try {
            long size = Files.size(indexFile);
            if (size > MAX_INDEX_BYTES) {
                throw new ModelFormatException(indexFile + ": shard index is " + size + " bytes, above the " + MAX_INDEX_BYTES + "-byte limit");
            }
            bytes = Files.readAllBytes(indexFile);
        } catch (NoSuchFileException e) {
            throw new ModelFormatException(indexFile + ": no such file");
        } catch (IOException e) {
            throw new ModelFormatException(indexFile + ": cannot read shard index: " + FileErrors.reason(e), e);
        }
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            throw new ModelFormatException(indexFile + ": shard index is not valid UTF-8 text");
        }
        try {
            return JSON.readTree(text);
        } catch (JsonProcessingException e) {
            throw new ModelFormatException(indexFile + ": shard index is not valid JSON: " + FileErrors.printable(e.getOriginalMessage()));
        }
    }

    private static JsonNode weightMap(Path indexFile, JsonNode root) {
        JsonNode map = root == null || !root.isObject() ? null : root.get("weight_map");
        if (map == null || !map.isObject() || map.size() == 0) {
            throw new ModelFormatException(indexFile + ": shard index has no \"weight_map\" object");
        }
        return map;
    }

    /** A shard's path: a file name inside the index's folder (no NUL, no way out through ".." or an absolute path). */
    private static Path shardPath(Path indexFile, Path folder, String shardName, String key) {
        Path p;
        try {
            p = folder.resolve(shardName).normalize();
        } catch (InvalidPathException e) { // e.g. a NUL: its message would print the raw name
            throw new ModelFormatException(indexFile + ": weight_map names shard " + FileErrors.quote(shardName) + " (for " + key
                    + "), which is not a valid file name");
        }
        if (shardName.isEmpty() || !p.startsWith(folder) || p.equals(folder)) {
            throw new ModelFormatException(indexFile + ": shard " + FileErrors.quote(shardName) + " (for " + key + ") points outside the folder");
        }
        return p;
    }

    @Override
    public Set<String> keys() {
        return byKey.keySet();
    }

    @Override
    public TensorInfo info(String key) {
        SafetensorsFile f = byKey.get(key);
        return f == null ? null : f.info(key);
    }

    @Override
    public Tensor load(String key) {
        SafetensorsFile f = byKey.get(key);
        if (f == null) throw new ModelFormatException(origin() + ": no tensor " + FileErrors.quote(key));
        return f.load(key);
    }

    @Override
    public String origin() {
        return index.toString();
    }

    @Override
    public void close() {
        shards.values().forEach(SafetensorsFile::close);
    }
}
