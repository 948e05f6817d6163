package io.mmdit4j.golden;

import java.util.List;

/** Runs the golden cases of one {@code kind}. */
public interface CaseRunner {
    List<CaseResult> run(GoldenCase c);

    /**
     * Runs {@code run} on the model the case names under {@code model.key} (a path relative to the case); an error result
     * when it names none or the path does not exist, and a failure for anything {@code run} throws.
     */
    static List<CaseResult> withModel(GoldenCase c, String key, java.util.function.Function<java.nio.file.Path, List<CaseResult>> run) {
        String rel = c.spec().path("model").path(key).asText("");
        if (rel.isEmpty()) return List.of(CaseResult.error(c.name(), "-", "case names no model." + key));
        java.nio.file.Path path = c.resolve(rel);
        if (!java.nio.file.Files.exists(path)) return List.of(CaseResult.error(c.name(), "-", "model not found: " + path));
        try {
            return run.apply(path);
        } catch (RuntimeException e) {
            return List.of(CaseResult.failed(c.name(), "-", e));
        }
    }

    /**
     * Runs a transformer case from each checkpoint it names: the diffusers folder (reported as the case), then the
     * original single-file layout under {@code originalKey} (reported as {@code <case>[suffix]}, or as the case when
     * {@code suffix} is null).
     */
    static List<CaseResult> fromEachCheckpoint(GoldenCase c, String originalKey, String suffix,
                                               java.util.function.BiFunction<String, java.nio.file.Path, List<CaseResult>> run) {
        List<CaseResult> results = new java.util.ArrayList<>();
        com.fasterxml.jackson.databind.JsonNode model = c.spec().path("model");
        if (model.hasNonNull("diffusers_folder")) results.addAll(run.apply(c.name(), c.resolve(model.get("diffusers_folder").asText())));
        if (model.hasNonNull(originalKey)) {
            results.addAll(run.apply(suffix == null ? c.name() : c.name() + "[" + suffix + "]", c.resolve(model.get(originalKey).asText())));
        }
        if (results.isEmpty()) results.add(CaseResult.error(c.name(), "-", "case names no model (diffusers_folder / " + originalKey + ")"));
        return results;
    }
}
