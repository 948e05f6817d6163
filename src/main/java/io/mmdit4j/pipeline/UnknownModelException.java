package io.mmdit4j.pipeline;

/** A model name that is neither a file or folder nor a known model descriptor, or a folder of no known family. */
public class UnknownModelException extends InvalidRequestException {
    public UnknownModelException(String message) {
        super(message);
    }
}
