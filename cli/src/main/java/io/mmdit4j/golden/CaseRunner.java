package io.mmdit4j.golden;

import java.util.List;

/** Runs the golden cases of one {@code kind}. */
public interface CaseRunner {
    List<CaseResult> run(GoldenCase c);

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
