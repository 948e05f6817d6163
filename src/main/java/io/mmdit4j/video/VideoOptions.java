package io.mmdit4j.video;

/**
 * How to encode.
 *
 * @param fps     frames per second, 1 to 240
 * @param codec   the codec to use, or null for the container's default with its fallbacks (MP4: H.264, then MPEG-4)
 * @param bitRate target bits per second for H.264 and MPEG-4, or 0 for a size-based default (about 0.3 bit per
 *                pixel per frame, at least 400 kbit/s); VP9 ignores it and encodes at constant quality
 */
public record VideoOptions(int fps, VideoCodec codec, long bitRate) {
    public static final int MAX_FPS = 240;

    public VideoOptions {
        if (fps < 1 || fps > MAX_FPS) throw new IllegalArgumentException("fps " + fps + ": must be 1 to " + MAX_FPS);
        if (bitRate < 0) throw new IllegalArgumentException("bit rate " + bitRate + ": must be >= 0 (0 = automatic)");
    }

    /** The container's default codec at {@code fps}. */
    public static VideoOptions fps(int fps) {
        return new VideoOptions(fps, null, 0);
    }

    public VideoOptions withCodec(VideoCodec c) {
        return new VideoOptions(fps, c, bitRate);
    }

    public VideoOptions withBitRate(long bps) {
        return new VideoOptions(fps, codec, bps);
    }

    long bitRateFor(int width, int height) {
        if (bitRate > 0) return bitRate;
        return Math.max(400_000L, (long) (0.3 * width * height * fps));
    }
}
