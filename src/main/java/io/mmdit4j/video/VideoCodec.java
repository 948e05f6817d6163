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

    /** The FFmpeg encoder name. */
    public String encoder() {
        return encoder;
    }
}
