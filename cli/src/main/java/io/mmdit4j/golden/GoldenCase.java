package io.mmdit4j.golden;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.io.SafetensorsFile;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** A golden case directory: {@code case.json} plus its tensor files, with model paths relative to the directory. */
public record GoldenCase(Path dir, JsonNode spec) {

    public static GoldenCase load(Path dir) {
        Path json = dir.resolve("case.json");
        try {
            return new GoldenCase(dir, new ObjectMapper().readTree(Files.readString(json)));
        } catch (IOException e) {
            throw new ModelFormatException(json + ": cannot read case: " + e.getMessage(), e);
        }
    }

    public String kind() {
        return spec.path("kind").asText("unknown");
    }

    /** The case name as the data names it ({@code area/name}), else derived from the path. */
    public String name() {
        String n = spec.path("case").asText("");
        if (!n.isEmpty()) return n;
        Path parent = dir.getParent();
        Path area = parent != null && parent.getFileName() != null && parent.getFileName().toString().equals("cases")
                ? parent.getParent() : null;
        return (area != null && area.getFileName() != null ? area.getFileName() + "/" : "") + dir.getFileName();
    }

    /** The case's compute dtype ({@code compute_dtype}, float32 when absent). */
    public io.mmdit4j.runtime.DType computeDtype() {
        return io.mmdit4j.runtime.DType.parse(spec.path("compute_dtype").asText("float32"));
    }

    public Path resolve(String relative) {
        return dir.resolve(relative).normalize();
    }

    public SafetensorsFile inputs() {
        return SafetensorsFile.open(dir.resolve(spec.path("inputs_file").asText("inputs.safetensors")));
    }

    public SafetensorsFile outputs() {
        return SafetensorsFile.open(dir.resolve(spec.path("outputs_file").asText("outputs.safetensors")));
    }

    public JsonNode compare() {
        return spec.path("compare");
    }

    public JsonNode params() {
        return spec.path("params");
    }

    public double atol(String output) {
        return compare().path(output).path("atol").asDouble(1e-4);
    }

    public double rtol(String output) {
        return compare().path(output).path("rtol").asDouble(1e-4);
    }
}
