package io.mmdit4j.runtime;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;

/** File helpers for outputs written through a temporary file. */
public final class Files2 {
    private Files2() {}

    /** Gives a file the permissions of a normally created one (rw-r--r--) where the file system has POSIX permissions. */
    public static void readableByAll(Path file) throws IOException {
        try {
            Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-r--r--"));
        } catch (UnsupportedOperationException ignored) {
            // not a POSIX file system: the default permissions apply
        }
    }
}
