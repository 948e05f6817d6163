package io.mmdit4j.models;

import io.mmdit4j.cosmos.CosmosFamily;
import io.mmdit4j.flux.FluxFamily;
import io.mmdit4j.hidream.HiDreamFamily;
import io.mmdit4j.hunyuan.HunyuanVideoFamily;
import io.mmdit4j.io.JsonConfigs;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.io.WeightFiles;
import io.mmdit4j.pipeline.UnknownModelException;
import io.mmdit4j.sd3.Sd3Family;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.stream.Collectors;

/**
 * The model families this engine knows, and detection of a model's family: from its descriptor's {@code family}, a
 * diffusers folder's {@code model_index.json} {@code _class_name}, or a single file's tensor names.
 */
public final class Families {
    private Families() {}

    private static final List<ModelFamily> FAMILIES = new CopyOnWriteArrayList<>(List.of(
            FluxFamily.INSTANCE,
            Sd3Family.INSTANCE,
            HunyuanVideoFamily.INSTANCE,
            HiDreamFamily.INSTANCE,
            CosmosFamily.INSTANCE));

    /** Adds a family (for families outside this library); built-in families are listed above. */
    public static void register(ModelFamily family) {
        if (find(family.name()) != null) throw new IllegalArgumentException("model family '" + family.name() + "' is already registered");
        FAMILIES.add(family);
    }

    public static List<ModelFamily> all() {
        return List.copyOf(FAMILIES);
    }

    /** The family of a name, or null. */
    public static ModelFamily find(String name) {
        for (ModelFamily f : FAMILIES) if (f.name().equals(name)) return f;
        return null;
    }

    /** The family of a name; an unknown name is an {@link UnknownModelException} listing the known ones. */
    public static ModelFamily byName(String name) {
        ModelFamily f = find(name);
        if (f == null) throw new UnknownModelException("model family '" + name + "': expected one of " + names());
        return f;
    }

    /**
     * The family of a model: the descriptor's (when given), else the folder's {@code model_index.json}
     * {@code _class_name}, else a single file's tensor names.
     */
    public static ModelFamily detect(ModelDescriptor descriptor, Path path) {
        if (descriptor != null) return byName(descriptor.family());
        if (Files.isDirectory(path) && !(Files.isReadable(path) && Files.isExecutable(path))) {
            // Else model_index.json merely looks absent, and the message below would send the user looking for it.
            throw new UnknownModelException(path + ": cannot read folder: permission denied");
        }
        Path index = path.resolve("model_index.json");
        if (Files.isRegularFile(index)) {
            String cls = JsonConfigs.readObject(index, "model index").path("_class_name").asText("");
            for (ModelFamily f : FAMILIES) if (f.loadsPipelineClass(cls)) return f;
            throw new UnknownModelException(index + ": _class_name is " + io.mmdit4j.io.FileErrors.quote(cls) + "; this engine loads "
                    + FAMILIES.stream().map(ModelFamily::name).collect(Collectors.joining(", ")) + " pipelines");
        }
        if (Files.isDirectory(path)) {
            throw new UnknownModelException(path + ": a folder without model_index.json (expected a diffusers pipeline folder, "
                    + "a single checkpoint file, or a model name)");
        }
        Set<String> keys;
        try (io.mmdit4j.io.TensorSource weights = WeightFiles.open(path)) {
            keys = Set.copyOf(weights.keys());
        } catch (ModelFormatException e) {
            throw new UnknownModelException(path + ": not a model folder or checkpoint: " + e.getMessage());
        }
        for (ModelFamily f : FAMILIES) if (f.recognizesWeights(keys)) return f;
        throw new UnknownModelException(path + ": its tensor names match no known model family (" + names() + ")");
    }

    private static String names() {
        return FAMILIES.stream().map(ModelFamily::name).collect(Collectors.joining(", "));
    }
}
