package io.mmdit4j.pipeline;

/** A generation request (or the settings it resolves to) that cannot run: one clear message, checked before any work. */
public class InvalidRequestException extends IllegalArgumentException {
    public InvalidRequestException(String message) {
        super(message);
    }

    public InvalidRequestException(String message, Throwable cause) {
        super(message, cause);
    }
}
