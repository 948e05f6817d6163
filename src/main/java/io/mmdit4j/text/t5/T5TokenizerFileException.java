package io.mmdit4j.text.t5;

import java.nio.file.Path;

/**
 * A T5 tokenizer file ({@code spiece.model}, {@code tokenizer.json}, {@code tokenizer_config.json}) that is missing,
 * unreadable or malformed. The message starts with the file and says what is wrong; {@link #file()} gives the file.
 */
public class T5TokenizerFileException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;
    private final transient Path file;

    public T5TokenizerFileException(Path file, String message, Throwable cause) {
        super(file + ": " + message, cause);
        this.file = file;
    }

    /** The offending file. */
    public Path file() {
        return file;
    }
}
