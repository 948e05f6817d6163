package io.mmdit4j.video;

/** The encoders the writer uses, by FFmpeg encoder name (all in the LGPL build of {@code org.bytedeco:ffmpeg}). */
public enum VideoCodec {
    /** H.264 through Cisco's openh264 (the LGPL build has no libx264). */
    H264("libopenh264"),
    /** MPEG-4 Part 2, FFmpeg's own encoder: the fallback for MP4 when openh264 cannot be opened. */
    MPEG4("mpeg4"),
    /** VP9 through libvpx, for WebM. */
    VP9("libvpx-vp9"),
    /** FFmpeg's GIF encoder on 8-bit palette frames. */
    GIF("gif");

    private final String encoder;

    VideoCodec(String encoder) {
        this.encoder = encoder;
    }

    /** Why this encoder cannot take a {@code width × height} clip, or null when it can. */
    public String unsupportedSize(int width, int height) {
        // openh264 accepts the size in avcodec_open2 but fails on the first frame below 16 pixels a side.
        if (this == H264 && (width < 16 || height < 16)) return "openh264 needs at least 16x16 pixels, got " + width + "x" + height;
        return null;
    }

    /** The FFmpeg encoder name. */
    public String encoder() {
        return encoder;
    }
}
