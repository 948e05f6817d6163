package io.mmdit4j.text.clip;

import java.nio.file.Path;

/**
 * A tokenizer file that is missing, unreadable or malformed. The message names the file and, where there is
 * one, the 1-based line; {@link #file()} and {@link #line()} give them to code.
 */
public class TokenizerFileException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;
    private final transient Path file;
    private final int line;

    public TokenizerFileException(Path file, int line, String message, Throwable cause) {
        super(file + (line > 0 ? ":" + line : "") + ": " + message, cause);
        this.file = file;
        this.line = line;
    }

    public TokenizerFileException(Path file, int line, String message) {
        this(file, line, message, null);
    }

    /** The offending file. */
    public Path file() {
        return file;
    }

    /** The 1-based line in {@link #file()}, or 0 when the problem is not tied to a line. */
    public int line() {
        return line;
    }
}
