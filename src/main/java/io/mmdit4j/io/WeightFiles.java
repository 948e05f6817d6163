package io.mmdit4j.io;

import io.mmdit4j.io.gguf.GgufFile;
import io.mmdit4j.io.quant.QuantizedSafetensors;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * Opens the weights of a model component: a single file (safetensors or GGUF), a folder with one file, or a sharded folder.
 * Quantized safetensors layouts (fp8, ComfyUI's scaled fp8, bitsandbytes 4-bit) are grouped into one tensor per weight
 * ({@link QuantizedSafetensors}).
 */
public final class WeightFiles {
    private WeightFiles() {}

    private static final List<String> PREFERRED = List.of("diffusion_pytorch_model", "model");

    public static TensorSource open(Path path) {
        TensorSource source = openFiles(path);
        return source instanceof GgufFile ? source : QuantizedSafetensors.of(source); // fp8 / scaled fp8 / bitsandbytes groups
    }

    private static TensorSource openFiles(Path path) {
        if (Files.isRegularFile(path)) {
            if (path.getFileName().toString().endsWith(".index.json")) return ShardedSafetensors.open(path);
            if (path.getFileName().toString().endsWith(".gguf") || GgufFile.isGguf(path)) return GgufFile.open(path);
            return SafetensorsFile.open(path);
        }
        if (!Files.isDirectory(path)) throw new ModelFormatException(path + ": no such file or folder");
        List<Path> files;
        try (Stream<Path> s = Files.list(path)) {
            files = s.filter(Files::isRegularFile).sorted().collect(Collectors.toList());
        } catch (IOException e) {
            throw new ModelFormatException(path + ": cannot list folder: " + FileErrors.reason(e), e);
        }
        for (String stem : PREFERRED) {
            Path index = path.resolve(stem + ".safetensors.index.json");
            if (Files.isRegularFile(index)) return ShardedSafetensors.open(index);
            Path single = path.resolve(stem + ".safetensors");
            if (Files.isRegularFile(single)) return SafetensorsFile.open(single);
        }
        List<Path> indexes = files.stream().filter(f -> f.toString().endsWith(".safetensors.index.json")).collect(Collectors.toList());
        if (indexes.size() == 1) return ShardedSafetensors.open(indexes.get(0));
        List<Path> singles = files.stream().filter(f -> f.toString().endsWith(".safetensors")).collect(Collectors.toList());
        if (singles.size() == 1) return SafetensorsFile.open(singles.get(0));
        List<Path> ggufs = files.stream().filter(f -> f.toString().endsWith(".gguf")).collect(Collectors.toList());
        if (singles.isEmpty() && indexes.isEmpty() && ggufs.size() == 1) return GgufFile.open(ggufs.get(0)); // a quantized diffusers folder
        if (singles.isEmpty() && indexes.isEmpty()) {
            throw new ModelFormatException(path + ": no .safetensors weights in this folder"
                    + (ggufs.size() > 1 ? " and several .gguf files to choose from: " + ggufs : ""));
        }
        throw new ModelFormatException(path + ": several weight files and no index to choose from: " + singles);
    }
}
