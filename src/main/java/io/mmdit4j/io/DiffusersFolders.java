package io.mmdit4j.io;

import java.nio.file.Files;
import java.nio.file.Path;

/** Checks of a diffusers pipeline folder, shared by the families' loaders; the failures say what folder was expected. */
public final class DiffusersFolders {
    private DiffusersFolders() {}

    /**
     * Fails unless {@code folder} has a {@code model_index.json} whose {@code _class_name} is {@code className};
     * {@code expected} describes the folder for the message ("a diffusers SD3 folder").
     */
    public static void checkModelIndex(Path folder, String className, String expected) {
        Path index = folder.resolve("model_index.json");
        if (!Files.isRegularFile(index)) throw new ModelFormatException(folder + ": no model_index.json (expected " + expected + ")");
        JsonConfigs.checkClass(JsonConfigs.readObject(index), index, className);
    }

    /** Fails on the first of {@code parts} that is not a subfolder of {@code folder}; {@code expected} as in {@link #checkModelIndex}. */
    public static void requireParts(Path folder, String expected, String... parts) {
        for (String part : parts) {
            if (!Files.isDirectory(folder.resolve(part))) throw new ModelFormatException(folder + ": missing '" + part + "/' (expected " + expected + ")");
        }
    }
}
