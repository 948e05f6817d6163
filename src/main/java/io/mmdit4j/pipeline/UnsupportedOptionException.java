package io.mmdit4j.pipeline;

/** A request option (classifier-free guidance, sigmas, video length, LoRA, ...) that the model's family does not support. */
public class UnsupportedOptionException extends InvalidRequestException {
    public UnsupportedOptionException(String message) {
        super(message);
    }
}
