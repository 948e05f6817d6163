package io.mmdit4j.io;

/**
 * A model or tensor file that cannot be used as it is: the message names the file, the tensor key
 * where there is one, and what was expected versus found.
 */
public class ModelFormatException extends RuntimeException {
    public ModelFormatException(String message) {
        super(message);
    }

    public ModelFormatException(String message, Throwable cause) {
        super(message, cause);
    }
}
