package io.mmdit4j.server;

/**
 * What one request may ask of the server (its defence against requests that would hold it for hours): images per request
 * (at most the batch, so every request fits one), steps, image side, prompt characters, guidance directions, body bytes.
 */
record ServerLimits(int maxImages, int maxSteps, int maxSide, int maxPromptChars, int maxDirections, long maxBodyBytes) {
    static final ServerLimits DEFAULTS = new ServerLimits(4, 100, 1024, 2000, 8, 64 * 1024);

    ServerLimits {
        if (maxImages < 1 || maxSteps < 1 || maxSide < 16 || maxPromptChars < 1 || maxDirections < 0 || maxBodyBytes < 256) {
            throw new IllegalArgumentException("server limits out of range: " + this);
        }
    }
}
