package io.mmdit4j.text;

import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.io.StateDict;
import io.mmdit4j.io.TensorSource;
import io.mmdit4j.io.WeightFiles;
import io.mmdit4j.runtime.DType;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.BiFunction;
import java.util.function.Function;

/** What the transformers text encoders (CLIP, T5, Llama) share: their model folder and their additive mask value. */
public final class TextEncoders {
    private TextEncoders() {}

    /**
     * Builds an encoder from a transformers folder ({@code config.json} + {@code model.safetensors} or shards with an
     * index): {@code readConfig} reads the config, {@code build} makes the model of it and the folder's tensors.
     *
     * @param kind what the folder should hold, for the error when it has no config.json ("a T5 encoder")
     */
    public static <C, M> M load(Path folder, String kind, Function<Path, C> readConfig, BiFunction<StateDict, C, M> build) {
        Path config = folder.resolve("config.json");
        if (!Files.isRegularFile(config)) throw new ModelFormatException(folder + ": no config.json (expected " + kind + " folder)");
        C c = readConfig.apply(config);
        try (TensorSource source = WeightFiles.open(folder)) { // the tensors keep the mapping alive on their own
            return build.apply(StateDict.of(source), c);
        }
    }

    /** {@code torch.finfo(dtype).min}, which the transformers encoders add where attention is masked. */
    public static double lowest(DType dtype) {
        return dtype == DType.BF16 ? -3.3895313892515355e38 : dtype == DType.F16 ? -65504.0 : -Float.MAX_VALUE;
    }
}
