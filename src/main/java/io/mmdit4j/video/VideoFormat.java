package io.mmdit4j.video;

import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/** Output containers, chosen by the file extension. */
public enum VideoFormat {
    /** MP4 with H.264 (openh264), or MPEG-4 Part 2 when openh264 cannot be opened. */
    MP4("mp4", ".mp4", List.of(VideoCodec.H264, VideoCodec.MPEG4)),
    /** WebM with VP9; Matroska tag names are upper-cased in the file and read back in lower case. */
    WEBM("webm", ".webm", List.of(VideoCodec.VP9)),
    /** Animated GIF: a preview with one 256-colour palette for the whole clip; it stores no metadata. */
    GIF("gif", ".gif", List.of(VideoCodec.GIF));

    private final String muxer;
    private final String extension;
    private final List<VideoCodec> codecs;

    VideoFormat(String muxer, String extension, List<VideoCodec> codecs) {
        this.muxer = muxer;
        this.extension = extension;
        this.codecs = codecs;
    }

    /** The FFmpeg muxer name. */
    public String muxer() {
        return muxer;
    }

    public String extension() {
        return extension;
    }

    /** The codecs this container takes, the default first, then the fallbacks tried in order. */
    public List<VideoCodec> codecs() {
        return codecs;
    }

    /** Whether generation settings survive in this container's metadata. */
    public boolean storesMetadata() {
        return this != GIF;
    }

    /** The format for a file name, by extension (case-insensitive). */
    public static VideoFormat of(Path file) {
        VideoFormat f = forName(file);
        if (f == null) {
            throw new IllegalArgumentException(file + ": unknown video extension, expected one of .mp4 (H.264), .webm (VP9), .gif");
        }
        return f;
    }

    /** The format for a file name, or null when the extension is not a video one. */
    public static VideoFormat forName(Path file) {
        Path name = file.getFileName();
        if (name == null) return null;
        String n = name.toString().toLowerCase(Locale.ROOT);
        for (VideoFormat f : values()) {
            if (n.endsWith(f.extension) && n.length() > f.extension.length()) return f;
        }
        return null;
    }
}
