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

    /**
     * {@code embedding(weight, ids)}: rows of {@code weight} [V, D] for ids [...] → [..., D]. On {@code meta} (shapes only)
     * an uninitialised meta tensor of that shape: libtorch has no meta kernel for {@code index_select}, which the
     * embedding runs. In the caller's scope.
     */
    public static org.bytedeco.pytorch.Tensor embed(org.bytedeco.pytorch.Tensor weight, org.bytedeco.pytorch.Tensor ids) {
        io.mmdit4j.runtime.Placement.require("embedding", weight, ids);
        if (!weight.is_meta()) return org.bytedeco.pytorch.global.torch.embedding(weight, ids);
        long[] shape = java.util.Arrays.copyOf(io.mmdit4j.runtime.Tensors.shape(ids), (int) ids.dim() + 1);
        shape[shape.length - 1] = weight.size(1);
        return org.bytedeco.pytorch.global.torch.empty(shape, weight.options(), new org.bytedeco.pytorch.MemoryFormatOptional());
    }

    /** {@code torch.finfo(dtype).min}, which the transformers encoders add where attention is masked. */
    public static double lowest(DType dtype) {
        return dtype == DType.BF16 ? -3.3895313892515355e38 : dtype == DType.F16 ? -65504.0 : -Float.MAX_VALUE;
    }
}
