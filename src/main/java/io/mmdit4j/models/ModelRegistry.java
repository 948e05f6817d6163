package io.mmdit4j.models;

import io.mmdit4j.io.ModelFormatException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * Resolves what users type after {@code --model}: a path, or a descriptor name from {@code models/}.
 * Downloaded checkpoints are looked up under {@code $MMDIT_MODELS/<local_dir>} (a diffusers folder) or
 * {@code $MMDIT_MODELS/<bfl_file>}; generated demo models are written once under {@code target/models/}.
 */
public final class ModelRegistry {
    private final Path home;
    private final Path modelsRoot;

    public ModelRegistry(Path home, Path modelsRoot) {
        this.home = home;
        this.modelsRoot = modelsRoot;
    }

    /** The registry of this installation: {@code -Dmmdit.home} (set by ./mmdit) or the working directory, and {@code -Dmmdit.models} or MMDIT_MODELS. */
    public static ModelRegistry standard() {
        Path home = Path.of(System.getProperty("mmdit.home", "."));
        String env = System.getProperty("mmdit.models", System.getenv("MMDIT_MODELS"));
        return new ModelRegistry(home, env == null || env.isBlank() ? null : Path.of(env));
    }

    /** {@code $MMDIT_MODELS}, where downloaded weights are looked up; null when not set. */
    public Path modelsRoot() {
        return modelsRoot;
    }

    public List<ModelDescriptor> descriptors() {
        Path dir = home.resolve("models");
        List<ModelDescriptor> out = new ArrayList<>();
        if (!Files.isDirectory(dir)) return out;
        try (Stream<Path> s = Files.list(dir)) {
            s.filter(p -> p.toString().endsWith(".json")).sorted().forEach(p -> out.add(ModelDescriptor.read(p)));
        } catch (IOException e) {
            throw new ModelFormatException(dir + ": cannot list model descriptors: " + e.getMessage(), e);
        }
        return out;
    }

    public ModelDescriptor descriptor(String name) {
        Path file = home.resolve("models").resolve(name + ".json");
        if (!Files.isRegularFile(file)) return null;
        return ModelDescriptor.read(file);
    }

    /** A path on disk for {@code nameOrPath}: the path itself, a generated demo model, or a downloaded checkpoint. */
    public Path resolve(String nameOrPath) {
        Path p = Path.of(nameOrPath);
        if (Files.exists(p)) return p;
        ModelDescriptor d = descriptor(nameOrPath);
        if (d == null) {
            List<String> names = descriptors().stream().map(ModelDescriptor::name).toList();
            throw new IllegalArgumentException("--model " + nameOrPath + ": no such file or folder, and no model descriptor of that name "
                    + "(known: " + names + ")");
        }
        if (d.isGenerated()) return generated(d);
        String localDir = d.source().path("local_dir").asText("");
        String bflFile = d.source().path("bfl_file").asText("");
        if (modelsRoot != null) {
            if (!localDir.isEmpty() && Files.isDirectory(modelsRoot.resolve(localDir))) return modelsRoot.resolve(localDir);
            if (!bflFile.isEmpty() && Files.isRegularFile(modelsRoot.resolve(bflFile))) return modelsRoot.resolve(bflFile);
        }
        throw new IllegalArgumentException("--model " + nameOrPath + ": the weights are not on this machine. Download "
                + d.source().path("hf_repo").asText("the model") + " and set MMDIT_MODELS to the folder holding '" + localDir
                + "' (a diffusers folder)" + (bflFile.isEmpty() ? "" : " or '" + bflFile + "' (the original single file)")
                + (modelsRoot == null ? " (MMDIT_MODELS is not set)" : " (looked in " + modelsRoot + ")"));
    }

    /** Writes a generated demo model's diffusers folder once (see {@link DemoPipeline}); later calls reuse it. */
    synchronized Path generated(ModelDescriptor d) {
        Path root = home.resolve("target/models").resolve(d.name());
        if (Files.isRegularFile(root.resolve("model_index.json"))) return root;
        boolean video = d.family().equals("hunyuan-video");
        if (!d.family().equals("flux") && !video) {
            throw new IllegalArgumentException(d.file() + ": generated models exist only for the flux and hunyuan-video families");
        }
        try {
            if (video) DemoPipeline.writeHunyuanVideo(d, root, home.resolve("models/tokenizers"));
            else DemoPipeline.write(d, root, home.resolve("models/tokenizers"));
            return root;
        } catch (IOException e) {
            throw new ModelFormatException(root + ": cannot write the generated model: " + e.getMessage(), e);
        }
    }
}
