package io.mmdit4j;

import java.nio.file.Files;
import java.nio.file.Path;

/** Where the shared golden reference data lives (read in place, never copied into the repository). */
public final class GoldenData {
    private GoldenData() {}

    public static Path root() {
        Path p = Path.of(System.getProperty("mmdit.golden", "../shared/golden"));
        if (!Files.isDirectory(p)) throw new IllegalStateException("golden data not found at " + p.toAbsolutePath());
        return p;
    }

    public static Path fluxCase(String name) {
        return root().resolve("flux_transformer/cases").resolve(name);
    }

    public static Path fluxModel(String variant) {
        return root().resolve("flux_transformer/models").resolve(variant);
    }
}
