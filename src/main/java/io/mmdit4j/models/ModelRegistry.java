package io.mmdit4j.models;

import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.io.Resources;
import io.mmdit4j.pipeline.UnknownModelException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * Resolves what users type after {@code --model}: a path, or a model descriptor name. Descriptors and the demo models'
 * tokenizer files are bundled in the library (resources {@code mmdit4j/models/}, from the checkout's {@code models/}),
 * so names resolve in any application; a checkout's own {@code models/} folder (when {@code -Dmmdit.home} points at it)
 * takes precedence. Downloaded checkpoints are looked up under {@code $MMDIT_MODELS/<local_dir>} (a diffusers folder) or
 * {@code $MMDIT_MODELS/<bfl_file>}; generated demo models are written once into a cache folder.
 */
public final class ModelRegistry {
    /** Where the descriptors are bundled on the class path. */
    public static final String BUNDLED = "/mmdit4j/models";

    private final Path descriptorDir;
    private final Path modelsRoot;
    private final Path cacheDir;
    private final java.util.function.Function<String, Path> bundledSources;

    /**
     * @param descriptorDir a folder of descriptors (and {@code tokenizers/}) taking precedence over the bundled ones, or null
     * @param modelsRoot    {@code $MMDIT_MODELS}, or null
     * @param cacheDir      where generated demo models are written
     */
    public ModelRegistry(Path descriptorDir, Path modelsRoot, Path cacheDir) {
        this(descriptorDir, modelsRoot, cacheDir, folder -> Resources.folder(BUNDLED + "/" + folder));
    }

    /** @param bundledSources where a bundled model folder is read from when the checkout has none (the class path; tests give a folder) */
    ModelRegistry(Path descriptorDir, Path modelsRoot, Path cacheDir, java.util.function.Function<String, Path> bundledSources) {
        this.descriptorDir = descriptorDir;
        this.modelsRoot = modelsRoot;
        this.cacheDir = cacheDir;
        this.bundledSources = bundledSources;
    }

    /** A checkout's registry: {@code home/models} descriptors, demos generated under {@code home/target/models}. */
    public ModelRegistry(Path home, Path modelsRoot) {
        this(home.resolve("models"), modelsRoot, home.resolve("target/models"));
    }

    /**
     * The registry of this process: {@code -Dmmdit.home} (set by {@code ./mmdit}) for a checkout, else the bundled
     * descriptors with demos cached in {@code -Dmmdit.cache} or {@code ~/.cache/mmdit4j/models}; and {@code -Dmmdit.models}
     * or {@code MMDIT_MODELS}.
     */
    public static ModelRegistry standard() {
        String env = System.getProperty("mmdit.models", System.getenv("MMDIT_MODELS"));
        Path root = env == null || env.isBlank() ? null : Path.of(env);
        String home = System.getProperty("mmdit.home");
        if (home != null) return new ModelRegistry(Path.of(home), root);
        String cache = System.getProperty("mmdit.cache");
        return new ModelRegistry(null, root, cache != null ? Path.of(cache) : Path.of(System.getProperty("user.home"), ".cache", "mmdit4j", "models"));
    }

    /** {@code $MMDIT_MODELS}, where downloaded weights are looked up; null when not set. */
    public Path modelsRoot() {
        return modelsRoot;
    }

    /** Every descriptor, by name: the bundled ones and those of the descriptor folder (which win). */
    public List<ModelDescriptor> descriptors() {
        Map<String, ModelDescriptor> byName = new TreeMap<>();
        for (Path dir : new Path[] {Resources.folder(BUNDLED), descriptorDir}) {
            if (dir == null || !Files.isDirectory(dir)) continue;
            try (Stream<Path> s = Files.list(dir)) {
                s.filter(p -> p.getFileName().toString().endsWith(".json")).sorted().forEach(p -> {
                    ModelDescriptor d = ModelDescriptor.read(p);
                    byName.put(d.name(), d);
                });
            } catch (IOException e) {
                throw new ModelFormatException(dir + ": cannot list model descriptors: " + e.getMessage(), e);
            }
        }
        return new ArrayList<>(byName.values());
    }

    /** The descriptor of a name, or null. */
    public ModelDescriptor descriptor(String name) {
        if (name == null || name.isBlank() || name.contains("/") || name.contains("\\") || name.startsWith(".")) return null;
        for (Path dir : new Path[] {descriptorDir, Resources.folder(BUNDLED)}) {
            if (dir == null) continue;
            Path file = dir.resolve(name + ".json");
            if (Files.isRegularFile(file)) return ModelDescriptor.read(file);
        }
        return null;
    }

    /** A path on disk for {@code nameOrPath}: the path itself, a generated demo model, or a downloaded checkpoint. */
    public Path resolve(String nameOrPath) {
        Path p = Path.of(nameOrPath);
        if (Files.exists(p)) return p;
        ModelDescriptor d = descriptor(nameOrPath);
        if (d == null) {
            List<String> names = descriptors().stream().map(ModelDescriptor::name).toList();
            throw new UnknownModelException("--model " + nameOrPath + ": no such file or folder, and no model descriptor of that name "
                    + "(known: " + names + ")");
        }
        if (d.isGenerated()) return generated(d);
        if (d.bundled() != null) return bundled(d);
        String localDir = d.source().path("local_dir").asText("");
        String bflFile = d.source().path("bfl_file").asText("");
        if (modelsRoot != null) {
            if (!localDir.isEmpty() && Files.isDirectory(modelsRoot.resolve(localDir))) return modelsRoot.resolve(localDir);
            if (!bflFile.isEmpty() && Files.isRegularFile(modelsRoot.resolve(bflFile))) return modelsRoot.resolve(bflFile);
        }
        throw new UnknownModelException("--model " + nameOrPath + ": the weights are not on this machine. Download "
                + d.source().path("hf_repo").asText("the model") + " and set MMDIT_MODELS to the folder holding '" + localDir
                + "' (a diffusers folder)" + (bflFile.isEmpty() ? "" : " or '" + bflFile + "' (the original single file)")
                + (modelsRoot == null ? " (MMDIT_MODELS is not set)" : " (looked in " + modelsRoot + ")"));
    }

    /** The tokenizer files of the demo models: the descriptor folder's {@code tokenizers/}, else the bundled ones. */
    public Path tokenizers() {
        if (descriptorDir != null && Files.isDirectory(descriptorDir.resolve("tokenizers"))) return descriptorDir.resolve("tokenizers");
        Path bundled = Resources.folder(BUNDLED + "/tokenizers");
        if (bundled == null) throw new ModelFormatException("the demo models' tokenizer files are not on the class path (" + BUNDLED + "/tokenizers)");
        return bundled;
    }

    /**
     * A trained demo shipped with the library ({@code "source": {"bundled": "<folder>"}}): the checkout's
     * {@code models/<folder>} itself, else a copy of the class-path folder in the cache (safetensors are memory-mapped,
     * which needs a real file, not a jar entry). The copy is named after a CRC-32 of the bundled files, so a library with
     * other weights never reuses a stale copy, and is written beside and moved into place.
     */
    synchronized Path bundled(ModelDescriptor d) {
        String folder = d.bundled();
        if (folder.isBlank() || folder.contains("/") || folder.contains("\\") || folder.startsWith(".")) {
            throw new ModelFormatException(d.file() + ": \"bundled\" must name a folder beside the descriptor, got '" + folder + "'");
        }
        if (descriptorDir != null && Files.isRegularFile(descriptorDir.resolve(folder).resolve("model_index.json"))) return descriptorDir.resolve(folder);
        Path source = bundledSources.apply(folder);
        if (source == null || !Files.isRegularFile(source.resolve("model_index.json"))) {
            throw new ModelFormatException("--model " + d.name() + ": the bundled model folder '" + folder + "' is not in the library ("
                    + BUNDLED + "/" + folder + "/model_index.json is missing from the class path)");
        }
        try {
            java.util.zip.CRC32 crc = new java.util.zip.CRC32();
            List<Path> files;
            try (Stream<Path> s = Files.walk(source)) {
                files = s.filter(Files::isRegularFile).sorted(java.util.Comparator.comparing(p -> source.relativize(p).toString())).toList();
            }
            for (Path f : files) {
                crc.update(source.relativize(f).toString().getBytes(java.nio.charset.StandardCharsets.UTF_8));
                crc.update(Files.readAllBytes(f));
            }
            Path root = cacheDir.resolve(String.format(java.util.Locale.ROOT, "%s-%08x", d.name(), crc.getValue()));
            if (Files.isRegularFile(root.resolve("model_index.json"))) return root;
            Files.createDirectories(cacheDir);
            Path tmp = Files.createTempDirectory(cacheDir, "." + root.getFileName());
            try {
                io.mmdit4j.runtime.Files2.copyTree(source, tmp);
                try {
                    Files.move(tmp, root, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
                } catch (java.nio.file.FileAlreadyExistsException | java.nio.file.DirectoryNotEmptyException e) {
                    // another process copied the same files meanwhile: use theirs
                    if (!Files.isRegularFile(root.resolve("model_index.json"))) throw e;
                }
            } finally {
                if (Files.exists(tmp)) io.mmdit4j.runtime.Files2.deleteTree(tmp);
            }
            return root;
        } catch (IOException e) {
            throw new ModelFormatException(cacheDir + ": cannot copy the bundled model " + d.name() + " there: " + e.getMessage(), e);
        }
    }

    /** Moves a stale generated folder aside (atomically, so that no reader sees half of it) and deletes it. */
    private static void retire(Path root) {
        Path stale = root.resolveSibling("." + root.getFileName() + ".stale-" + ProcessHandle.current().pid() + "-" + System.nanoTime());
        try {
            Files.move(root, stale, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
            io.mmdit4j.runtime.Files2.deleteTree(stale);
        } catch (java.nio.file.NoSuchFileException e) {
            // another process retired it meanwhile
        } catch (IOException e) {
            throw new ModelFormatException(root + ": cannot replace this generated model of an older version: " + e.getMessage()
                    + " (delete the folder and run again)", e);
        }
    }

    /** Writes a generated demo model's diffusers folder once (see {@link ModelFamily#writeDemo}); later calls reuse it. */
    synchronized Path generated(ModelDescriptor d) {
        Path root = cacheDir.resolve(d.name());
        if (Files.isRegularFile(root.resolve("model_index.json"))) {
            if (DemoModels.isCurrent(root)) return root;
            retire(root); // written by an older version (its video VAE without the encoder): written again below
        }
        try {
            Families.byName(d.family()).writeDemo(d, root, tokenizers());
            return root;
        } catch (IOException e) {
            throw new ModelFormatException(root + ": cannot write the generated model: " + e.getMessage(), e);
        }
    }
}
