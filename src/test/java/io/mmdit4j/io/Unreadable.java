package io.mmdit4j.io;

import org.junit.jupiter.api.Assumptions;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;

/**
 * A file the test process cannot read (open fails with EACCES). chmod 000 does it for a normal user; root reads through
 * permissions, so as root it is a link to a write-only sysfs attribute, which the kernel refuses to open for reading
 * even to root. Without either the test is skipped.
 */
public final class Unreadable {
    private Unreadable() {}

    private static final Path WRITE_ONLY = Path.of("/sys/bus/pci/rescan");

    /** {@code dir/name}, an existing regular file that cannot be opened for reading. */
    public static Path file(Path dir, String name) throws IOException {
        Path f = Files.write(dir.resolve(name), new byte[64]);
        Files.setPosixFilePermissions(f, PosixFilePermissions.fromString("---------"));
        if (deniesReading(f)) return f;
        Files.delete(f);
        Assumptions.assumeTrue(Files.isRegularFile(WRITE_ONLY) && deniesReading(WRITE_ONLY),
                "this process reads chmod-000 files (root) and " + WRITE_ONLY + " is not there to deny it");
        return Files.createSymbolicLink(f, WRITE_ONLY);
    }

    private static boolean deniesReading(Path f) {
        try (InputStream in = Files.newInputStream(f)) {
            return false;
        } catch (AccessDeniedException e) {
            return true;
        } catch (IOException e) {
            return false;
        }
    }
}
