package io.mmdit4j.hidream;

import io.mmdit4j.models.ModelRegistry;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** The bundled {@code hidream-tiny-demo} written into a test's own home (its descriptor and tokenizers copied from the checkout). */
public final class HiDreamDemo {
    public static final String NAME = "hidream-tiny-demo";

    private HiDreamDemo() {}

    /** A registry of {@code home} holding the demo's descriptor and the tokenizers it needs. */
    public static ModelRegistry registry(Path home) throws IOException {
        Files.createDirectories(home.resolve("models"));
        Path descriptor = home.resolve("models").resolve(NAME + ".json");
        if (!Files.exists(descriptor)) Files.copy(Path.of("models").resolve(NAME + ".json"), descriptor);
        for (String sub : new String[] {"clip", "t5", "llama-demo"}) {
            Path to = home.resolve("models/tokenizers").resolve(sub);
            if (Files.isDirectory(to)) continue;
            Files.createDirectories(to);
            try (var files = Files.list(Path.of("models/tokenizers").resolve(sub))) {
                for (Path f : (Iterable<Path>) files::iterator) Files.copy(f, to.resolve(f.getFileName()));
            }
        }
        return new ModelRegistry(home, null);
    }

    /** The demo's diffusers folder (generated on first use). */
    public static Path folder(Path home) throws IOException {
        return registry(home).resolve(NAME);
    }
}
