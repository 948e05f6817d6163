package io.mmdit4j.pipeline;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.List;

/**
 * Writing a generation's files failed part way (a full disk, a folder that became unwritable). Each file appears
 * atomically, so the files listed by {@link #written} are complete and nothing else of the batch exists; the message
 * names both.
 */
public class OutputWriteException extends UncheckedIOException {
    private final List<Path> written;

    public OutputWriteException(String message, List<Path> written, IOException cause) {
        super(message, cause);
        this.written = List.copyOf(written);
    }

    /** The complete files written before the failure, in order. */
    public List<Path> written() {
        return written;
    }
}
