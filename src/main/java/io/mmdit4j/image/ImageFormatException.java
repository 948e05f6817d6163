package io.mmdit4j.image;

/**
 * An image file that cannot be read as it is: not a PNG, truncated, a chunk whose CRC does not match, text that is not
 * what its chunk type says or decompresses past the limit. The message names the file and, where there is one, the
 * chunk and its byte offset. An {@link IllegalArgumentException}, as the other errors about inputs a caller gave.
 */
public class ImageFormatException extends IllegalArgumentException {
    public ImageFormatException(String message) {
        super(message);
    }

    public ImageFormatException(String message, Throwable cause) {
        super(message, cause);
    }
}
