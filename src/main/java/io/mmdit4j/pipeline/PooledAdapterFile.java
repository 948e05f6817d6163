package io.mmdit4j.pipeline;

import com.fasterxml.jackson.databind.node.ObjectNode;

import java.nio.file.Path;
import java.util.Objects;

/**
 * The pooled-CLIP adapter file a COSMOS pipeline was loaded with ({@code --adapter}, or the one it found in the model
 * folder or under {@code $MMDIT_MODELS}). The pipeline adds it to the settings it resolves, so a recorded image names its
 * adapter and {@code generate --from} loads the same one; a request that names another adapter than the loaded one is
 * refused (the adapter is part of the model, it cannot change per request).
 */
public record PooledAdapterFile(Path file) implements GenerationOption {
    public PooledAdapterFile {
        Objects.requireNonNull(file, "file");
    }

    /** Whether {@code other} is the same file (as absolute, normalised paths). */
    public boolean sameFile(Path other) {
        return other != null && file.toAbsolutePath().normalize().equals(other.toAbsolutePath().normalize());
    }

    @Override
    public void write(ObjectNode s) {
        s.put("pooled_adapter", file.toString());
    }
}
