package io.mmdit4j.io;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * What a file looked like when it was opened: size, modification time and identity (device and inode where the file
 * system has them). Comparing it with a fresh one costs a {@code stat}; it is taken when a checkpoint is opened and
 * compared before each load phase, because a memory-mapped file that shrinks under its mapping crashes the process
 * with SIGBUS on the next read of a page past the new end, and one rewritten in place silently mixes old and new weights.
 */
public record FileSnapshot(Path file, long size, FileTime modified, Object identity) {

    /** The file as it is now. */
    public static FileSnapshot of(Path file) {
        try {
            BasicFileAttributes a = Files.readAttributes(file, BasicFileAttributes.class);
            return new FileSnapshot(file, a.size(), a.lastModifiedTime(), a.fileKey());
        } catch (NoSuchFileException e) {
            throw new ModelFormatException(file + ": no such file");
        } catch (IOException e) {
            throw new ModelFormatException(file + ": cannot read: " + FileErrors.reason(e), e);
        }
    }

    /** Fails with a {@link ModelFormatException} naming what changed when the file is no longer as in this snapshot. */
    public void requireUnchanged() {
        String change = changeSince();
        if (change != null) {
            throw new ModelFormatException(file + ": the checkpoint changed on disk since it was opened (" + change
                    + "): reload the model (--no-mmap reads the weights into memory, where later changes of the file cannot reach them)");
        }
    }

    /** What changed since this snapshot, in words ("size 4096 -> 100000 bytes", "deleted"), or null when nothing did. */
    public String changeSince() {
        BasicFileAttributes a;
        try {
            a = Files.readAttributes(file, BasicFileAttributes.class);
        } catch (NoSuchFileException e) {
            return "deleted or moved away";
        } catch (IOException e) {
            return "cannot read it any more: " + FileErrors.reason(e);
        }
        return differences(a.size(), a.lastModifiedTime(), a.fileKey());
    }

    /** The differences from another snapshot of the same path, or null. */
    public String changeTo(FileSnapshot now) {
        return differences(now.size, now.modified, now.identity);
    }

    private String differences(long newSize, FileTime newModified, Object newIdentity) {
        List<String> d = new ArrayList<>();
        if (!Objects.equals(identity, newIdentity)) d.add("replaced by another file");
        if (size != newSize) d.add("size " + size + " -> " + newSize + " bytes");
        if (!Objects.equals(modified, newModified)) d.add("modified " + modified + " -> " + newModified);
        return d.isEmpty() ? null : String.join(", ", d);
    }
}
