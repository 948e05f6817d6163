package io.mmdit4j.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.bytedeco.pytorch.Tensor;

import java.io.IOException;
import java.nio.file.Files;
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

    public static ShardedSafetensors open(Path indexFile) {
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(Files.readString(indexFile));
        } catch (IOException e) {
            throw new ModelFormatException(indexFile + ": cannot read shard index: " + e.getMessage(), e);
        }
        JsonNode map = root == null ? null : root.get("weight_map");
        if (map == null || !map.isObject() || map.size() == 0) {
            throw new ModelFormatException(indexFile + ": shard index has no \"weight_map\" object");
        }
        Map<String, SafetensorsFile> shards = new LinkedHashMap<>();
        Map<String, SafetensorsFile> byKey = new TreeMap<>();
        Path folder = indexFile.toAbsolutePath().normalize().getParent();
        try {
            for (var it = map.fields(); it.hasNext(); ) {
                var e = it.next();
                String shardName = e.getValue().asText();
                Path shardPath = folder.resolve(shardName).normalize();
                if (!shardPath.startsWith(folder)) {
                    throw new ModelFormatException(indexFile + ": shard '" + shardName + "' points outside the folder");
                }
                if (!java.nio.file.Files.isRegularFile(shardPath)) {
                    throw new ModelFormatException(indexFile + ": weight_map names shard '" + shardName + "' (for '" + e.getKey()
                            + "'), but " + shardPath + " does not exist");
                }
                SafetensorsFile shard = shards.computeIfAbsent(shardName, n -> SafetensorsFile.open(shardPath));
                if (shard.info(e.getKey()) == null) {
                    throw new ModelFormatException(indexFile + ": weight_map puts '" + e.getKey() + "' in " + shardName
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
        if (f == null) throw new ModelFormatException(origin() + ": no tensor '" + key + "'");
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
