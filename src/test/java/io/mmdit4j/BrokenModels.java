package io.mmdit4j;

import io.mmdit4j.io.SafetensorsWriter;
import io.mmdit4j.io.TensorSource;
import io.mmdit4j.io.WeightFiles;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.Stream;

/** Damaged copies of the golden models, for tests of what a broken checkpoint does. */
public final class BrokenModels {
    private BrokenModels() {}

    /** The tiny FLUX.1-dev pipeline of the golden data. */
    public static Path fluxTinyDev() {
        return GoldenData.root().resolve("flux_pipeline/models/flux-tiny-dev");
    }

    /** A copy of the diffusers folder {@code model} at {@code to} whose transformer weights are all NaN. */
    public static Path nanTransformer(Path model, Path to) throws IOException {
        try (Stream<Path> s = Files.walk(model)) {
            for (Path p : s.toList()) {
                Path t = to.resolve(model.relativize(p).toString());
                if (Files.isDirectory(p)) Files.createDirectories(t);
                else Files.copy(p, t);
            }
        }
        try (Stream<Path> s = Files.list(to.resolve("transformer"))) {
            for (Path f : s.filter(f -> f.toString().endsWith(".safetensors")).toList()) Files.delete(f);
        }
        try (TensorSource src = WeightFiles.open(model.resolve("transformer")); PointerScope scope = new PointerScope()) {
            Map<String, Tensor> nan = new LinkedHashMap<>();
            for (String k : src.keys()) nan.put(k, src.load(k).mul(new Scalar(Double.NaN)));
            SafetensorsWriter.write(to.resolve("transformer/diffusion_pytorch_model.safetensors"), nan);
        }
        return to;
    }
}
