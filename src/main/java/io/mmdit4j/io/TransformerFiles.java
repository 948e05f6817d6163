package io.mmdit4j.io;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.BiFunction;
import java.util.function.UnaryOperator;

/**
 * Where a family's transformer weights and configuration are, shared by the families' {@code load} and {@code inspect}:
 * a diffusers transformer folder ({@code config.json} + weights), a model folder with {@code transformer/}, or a single
 * weights file. Each family keeps its own configuration type and key map.
 */
public final class TransformerFiles {
    private TransformerFiles() {}

    /** The transformer weights for {@code path}: a model folder's {@code transformer/} (when it has no config.json of its own), else the path. */
    public static Path transformerPath(Path path) {
        if (Files.isDirectory(path) && !Files.exists(path.resolve("config.json")) && Files.isDirectory(path.resolve("transformer"))) {
            return path.resolve("transformer");
        }
        return path;
    }

    /** The diffusers {@code config.json} of a transformer folder {@code weights}; null for a single file or a folder without one. */
    public static Path configJson(Path weights) {
        Path json = weights.resolve("config.json");
        return Files.isDirectory(weights) && Files.isRegularFile(json) ? json : null;
    }

    /**
     * Opens the weights at {@link #transformerPath}{@code (path)}, renames them to diffusers names with {@code diffusersNamed}
     * (a family's key map; identity for diffusers-only families) and returns what {@code read} makes of the weights' path
     * and tensors. The source is closed afterwards: tensors loaded from it keep its mapping alive on their own.
     */
    public static <T> T read(Path path, UnaryOperator<StateDict> diffusersNamed, BiFunction<Path, StateDict, T> read) {
        Path weights = transformerPath(path);
        try (TensorSource source = WeightFiles.open(weights)) {
            return read.apply(weights, diffusersNamed.apply(StateDict.of(source)));
        }
    }
}
