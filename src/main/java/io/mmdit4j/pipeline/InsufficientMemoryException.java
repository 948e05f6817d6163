package io.mmdit4j.pipeline;

/** A generation whose memory estimate exceeds the memory available: refused before any work, instead of being killed in it. */
public class InsufficientMemoryException extends InvalidRequestException {
    private final MemoryEstimate estimate;
    private final long availableBytes;

    public InsufficientMemoryException(String message, MemoryEstimate estimate, long availableBytes) {
        super(message);
        this.estimate = estimate;
        this.availableBytes = availableBytes;
    }

    public MemoryEstimate estimate() {
        return estimate;
    }

    public long availableBytes() {
        return availableBytes;
    }
}
