package io.mmdit4j.video;

import org.bytedeco.ffmpeg.avutil.AVDictionary;
import org.bytedeco.ffmpeg.avutil.AVDictionaryEntry;
import org.bytedeco.javacpp.BytePointer;

import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.bytedeco.ffmpeg.global.avutil.AV_LOG_ERROR;
import static org.bytedeco.ffmpeg.global.avutil.av_dict_iterate;
import static org.bytedeco.ffmpeg.global.avutil.av_dict_set;
import static org.bytedeco.ffmpeg.global.avutil.av_log_set_level;
import static org.bytedeco.ffmpeg.global.avutil.av_strerror;

/** Small helpers shared by the video writer and reader: error text, UTF-8 dictionaries, quiet logging. */
final class Ffmpeg {
    private Ffmpeg() {}

    /** {@code AVERROR(EAGAIN)} on Linux: the codec wants more input (or output to be drained) first. */
    static final int EAGAIN = -11;

    static {
        // FFmpeg logs every stream it opens at INFO to stderr; only real errors are of interest here.
        av_log_set_level(AV_LOG_ERROR);
    }

    /** Loads the natives and applies the log level; cheap after the first call. */
    static void init() {}

    static String error(int code) {
        byte[] buf = new byte[256];
        if (av_strerror(code, buf, buf.length) < 0) return "error " + code;
        int n = 0;
        while (n < buf.length && buf[n] != 0) n++;
        return new String(buf, 0, n, StandardCharsets.UTF_8) + " (" + code + ")";
    }

    /** Sets a key in a dictionary as UTF-8 (JavaCPP's String overloads use the platform charset). */
    static void set(AVDictionary dict, String key, String value) {
        try (BytePointer k = new BytePointer(key, StandardCharsets.UTF_8);
             BytePointer v = new BytePointer(value, StandardCharsets.UTF_8)) {
            int ret = av_dict_set(dict, k, v, 0);
            if (ret < 0) throw new IllegalStateException("av_dict_set(" + key + "): " + error(ret));
        }
    }

    /** A dictionary's entries in order, decoded as UTF-8. */
    static Map<String, String> toMap(AVDictionary dict) {
        Map<String, String> out = new LinkedHashMap<>();
        if (dict == null || dict.isNull()) return out;
        AVDictionaryEntry e = null;
        while ((e = av_dict_iterate(dict, e)) != null && !e.isNull()) {
            out.put(e.key().getString(StandardCharsets.UTF_8), e.value().getString(StandardCharsets.UTF_8));
        }
        return out;
    }
}
