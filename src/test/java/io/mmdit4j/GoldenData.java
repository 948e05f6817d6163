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

    /**
     * The repository's own reference cases of an area, {@code src/test/reference/<area>/cases}: outputs of the reference
     * implementations for what the shared set lacks (tools/reference/). Found from {@code mmdit.home} (set by the build) or
     * from the working directory up, whichever module's folder the tests run in.
     */
    public static Path reference(String area) {
        Path rel = Path.of("src/test/reference", area, "cases");
        java.util.List<Path> starts = new java.util.ArrayList<>();
        String home = System.getProperty("mmdit.home");
        if (home != null && !home.isBlank()) starts.add(Path.of(home));
        starts.add(Path.of("").toAbsolutePath());
        for (Path start : starts) {
            for (Path p = start.toAbsolutePath().normalize(); p != null; p = p.getParent()) {
                if (Files.isDirectory(p.resolve(rel)) && Files.isRegularFile(p.resolve("engine.xml"))) return p.resolve(rel);
            }
        }
        throw new IllegalStateException("no " + rel + " in a checkout at or above " + starts);
    }

    public static Path fluxCase(String name) {
        return root().resolve("flux_transformer/cases").resolve(name);
    }

    public static Path fluxModel(String variant) {
        return root().resolve("flux_transformer/models").resolve(variant);
    }
}
