package io.mmdit4j.video;

import org.bytedeco.ffmpeg.avcodec.AVCodec;
import org.bytedeco.ffmpeg.avcodec.AVCodecContext;
import org.bytedeco.ffmpeg.avcodec.AVCodecParameters;
import org.bytedeco.ffmpeg.avcodec.AVPacket;
import org.bytedeco.ffmpeg.avformat.AVFormatContext;
import org.bytedeco.ffmpeg.avformat.AVStream;
import org.bytedeco.ffmpeg.avutil.AVFrame;
import org.bytedeco.ffmpeg.avutil.AVPixFmtDescriptor;
import org.bytedeco.ffmpeg.swscale.SwsContext;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.IntPointer;
import org.bytedeco.javacpp.PointerPointer;
import org.bytedeco.javacpp.PointerScope;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import static org.bytedeco.ffmpeg.global.avcodec.av_packet_alloc;
import static org.bytedeco.ffmpeg.global.avcodec.av_packet_free;
import static org.bytedeco.ffmpeg.global.avcodec.av_packet_unref;
import static org.bytedeco.ffmpeg.global.avcodec.avcodec_alloc_context3;
import static org.bytedeco.ffmpeg.global.avcodec.avcodec_find_decoder;
import static org.bytedeco.ffmpeg.global.avcodec.avcodec_free_context;
import static org.bytedeco.ffmpeg.global.avcodec.avcodec_get_name;
import static org.bytedeco.ffmpeg.global.avcodec.avcodec_open2;
import static org.bytedeco.ffmpeg.global.avcodec.avcodec_parameters_to_context;
import static org.bytedeco.ffmpeg.global.avcodec.avcodec_receive_frame;
import static org.bytedeco.ffmpeg.global.avcodec.avcodec_send_packet;
import static org.bytedeco.ffmpeg.global.avformat.av_find_best_stream;
import static org.bytedeco.ffmpeg.global.avformat.av_read_frame;
import static org.bytedeco.ffmpeg.global.avformat.avformat_close_input;
import static org.bytedeco.ffmpeg.global.avformat.avformat_find_stream_info;
import static org.bytedeco.ffmpeg.global.avformat.avformat_open_input;
import static org.bytedeco.ffmpeg.global.avutil.AVCOL_RANGE_JPEG;
import static org.bytedeco.ffmpeg.global.avutil.AVCOL_SPC_BT709;
import static org.bytedeco.ffmpeg.global.avutil.AVERROR_EOF;
import static org.bytedeco.ffmpeg.global.avutil.AVMEDIA_TYPE_VIDEO;
import static org.bytedeco.ffmpeg.global.avutil.AV_PIX_FMT_FLAG_PAL;
import static org.bytedeco.ffmpeg.global.avutil.AV_PIX_FMT_FLAG_RGB;
import static org.bytedeco.ffmpeg.global.avutil.AV_PIX_FMT_RGB24;
import static org.bytedeco.ffmpeg.global.avutil.AV_TIME_BASE;
import static org.bytedeco.ffmpeg.global.avutil.av_frame_alloc;
import static org.bytedeco.ffmpeg.global.avutil.av_frame_free;
import static org.bytedeco.ffmpeg.global.avutil.av_pix_fmt_desc_get;
import static org.bytedeco.ffmpeg.global.avutil.av_q2d;
import static org.bytedeco.ffmpeg.global.swscale.SWS_ACCURATE_RND;
import static org.bytedeco.ffmpeg.global.swscale.SWS_BILINEAR;
import static org.bytedeco.ffmpeg.global.swscale.SWS_CS_ITU601;
import static org.bytedeco.ffmpeg.global.swscale.SWS_CS_ITU709;
import static org.bytedeco.ffmpeg.global.swscale.sws_freeContext;
import static org.bytedeco.ffmpeg.global.swscale.sws_getCoefficients;
import static org.bytedeco.ffmpeg.global.swscale.sws_getContext;
import static org.bytedeco.ffmpeg.global.swscale.sws_scale;
import static org.bytedeco.ffmpeg.global.swscale.sws_setColorspaceDetails;

/** Reads a video file back: its metadata ({@link #probe}) or every frame as packed RGB ({@link #read}). */
public final class VideoReader {
    private VideoReader() {}

    /**
     * A file's container, video stream and container metadata (a GIF's from its comment extensions). {@code frames} is the
     * count the container declares, else (WebM) the stream's packets counted by {@link #probe}; {@code durationSeconds}
     * is -1 when unknown.
     */
    public record Info(String container, String codec, int width, int height, double fps, long frames,
                       double durationSeconds, Map<String, String> metadata) {}

    /** Decoded frames and the file's {@link Info}. */
    public record Decoded(Info info, RgbFrames frames) {}

    /** Container, stream and metadata without decoding any frame. */
    public static Info probe(Path file) {
        return run(file, false, 0).info();
    }

    /** Every frame of the first video stream; at most {@code maxFrames} are kept (more is an error). */
    public static Decoded read(Path file, int maxFrames) {
        if (maxFrames < 1) throw new IllegalArgumentException("maxFrames " + maxFrames + ": must be >= 1");
        return run(file, true, maxFrames);
    }

    /** Every frame, at most 10,000. */
    public static Decoded read(Path file) {
        return read(file, 10_000);
    }

    private static Decoded run(Path file, boolean decode, int maxFrames) {
        if (!Files.isRegularFile(file)) throw new IllegalArgumentException(file + ": not a file");
        Ffmpeg.init();
        AVFormatContext ic = new AVFormatContext(null);
        AVCodecContext c = null;
        AVFrame frame = null;
        AVPacket pkt = null;
        Converter conv = new Converter();
        try (PointerScope scope = new PointerScope()) {
            check(avformat_open_input(ic, new BytePointer(file.toString(), StandardCharsets.UTF_8), null, null), "avformat_open_input");
            check(avformat_find_stream_info(ic, (PointerPointer<?>) null), "avformat_find_stream_info");
            int idx = av_find_best_stream(ic, AVMEDIA_TYPE_VIDEO, -1, -1, (PointerPointer<?>) null, 0);
            if (idx < 0) throw new IOException("no video stream");
            AVStream st = ic.streams(idx);
            AVCodecParameters par = st.codecpar();
            String codecName = avcodec_get_name(par.codec_id()).getString();
            double fps = st.avg_frame_rate().num() > 0 ? av_q2d(st.avg_frame_rate()) : av_q2d(st.r_frame_rate());
            double duration = ic.duration() > 0 ? ic.duration() / (double) AV_TIME_BASE : -1;
            String container = ic.iformat().name().getString();
            Map<String, String> metadata = metadata(container, ic);
            if (container.equals("gif")) metadata.putAll(GifComments.read(file));
            if (!decode) {
                // WebM (Matroska) declares no frame count: count the stream's packets, one per frame (no decoding)
                long frames = st.nb_frames() > 0 ? st.nb_frames() : countPackets(ic, idx);
                return new Decoded(new Info(container, codecName, par.width(), par.height(), fps, frames, duration, metadata), null);
            }
            Info info = new Info(container, codecName, par.width(), par.height(), fps,
                    st.nb_frames() > 0 ? st.nb_frames() : -1, duration, metadata);

            AVCodec dec = avcodec_find_decoder(par.codec_id());
            if (dec == null || dec.isNull()) throw new IOException("no decoder for " + codecName + " in this FFmpeg build");
            c = avcodec_alloc_context3(dec);
            check(avcodec_parameters_to_context(c, par), "avcodec_parameters_to_context");
            check(avcodec_open2(c, dec, (PointerPointer<?>) null), "avcodec_open2(" + codecName + ")");
            frame = av_frame_alloc();
            pkt = av_packet_alloc();
            List<byte[]> frames = new ArrayList<>();
            while (true) {
                int ret = av_read_frame(ic, pkt);
                if (ret == AVERROR_EOF) break;
                check(ret, "av_read_frame");
                try {
                    if (pkt.stream_index() == idx) {
                        check(avcodec_send_packet(c, pkt), "avcodec_send_packet");
                        receive(c, frame, conv, frames, maxFrames);
                    }
                } finally {
                    av_packet_unref(pkt);
                }
            }
            check(avcodec_send_packet(c, null), "avcodec_send_packet(flush)");
            receive(c, frame, conv, frames, maxFrames);
            if (frames.isEmpty()) throw new IOException("no frames decoded");
            return new Decoded(info, new RgbFrames(conv.width, conv.height, frames));
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": cannot read video: " + e.getMessage(), e);
        } finally {
            conv.close();
            if (frame != null) av_frame_free(frame);
            if (pkt != null) av_packet_free(pkt);
            if (c != null) avcodec_free_context(c);
            if (!ic.isNull()) avformat_close_input(ic);
        }
    }

    /** The packets of stream {@code idx} from the current position (video: one per frame); -1 when reading fails. */
    private static long countPackets(AVFormatContext ic, int idx) {
        AVPacket pkt = av_packet_alloc();
        try {
            long n = 0;
            while (true) {
                int ret = av_read_frame(ic, pkt);
                if (ret == AVERROR_EOF) return n;
                if (ret < 0) return -1;
                if (pkt.stream_index() == idx) n++;
                av_packet_unref(pkt);
            }
        } finally {
            av_packet_free(pkt);
        }
    }

    /**
     * The container metadata. FFmpeg's Matroska/WebM muxer upper-cases tag names (and turns spaces into
     * underscores), so keys from a Matroska file come back in lower case: settings keys should be lower-case
     * snake_case to survive every container unchanged.
     */
    private static Map<String, String> metadata(String container, AVFormatContext ic) {
        Map<String, String> raw = Ffmpeg.toMap(ic.metadata());
        if (!container.contains("matroska")) return raw;
        Map<String, String> out = new LinkedHashMap<>();
        raw.forEach((k, v) -> out.put(k.toLowerCase(Locale.ROOT), v));
        return out;
    }

    private static void receive(AVCodecContext c, AVFrame frame, Converter conv, List<byte[]> out, int maxFrames) throws IOException {
        while (true) {
            int ret = avcodec_receive_frame(c, frame);
            if (ret == Ffmpeg.EAGAIN || ret == AVERROR_EOF) return;
            check(ret, "avcodec_receive_frame");
            if (out.size() == maxFrames) throw new IOException("more than " + maxFrames + " frames");
            out.add(conv.toRgb(frame));
        }
    }

    /** Frame to packed RGB through swscale, one context per size and pixel format. */
    private static final class Converter implements AutoCloseable {
        SwsContext sws;
        int width = -1, height = -1, format = -1;
        BytePointer rgb;
        PointerPointer<BytePointer> dstPlanes;
        IntPointer dstStrides;

        byte[] toRgb(AVFrame f) throws IOException {
            int w = f.width(), h = f.height();
            if (w < 1 || h < 1 || w > RgbFrames.MAX_SIDE || h > RgbFrames.MAX_SIDE) throw new IOException("frame size " + w + "x" + h + " not supported");
            if (width >= 0 && (w != width || h != height)) throw new IOException("frame size changes from " + width + "x" + height + " to " + w + "x" + h);
            if (sws == null || f.format() != format) {
                close();
                format = f.format();
                width = w;
                height = h;
                sws = sws_getContext(w, h, format, w, h, AV_PIX_FMT_RGB24, SWS_BILINEAR | SWS_ACCURATE_RND, null, null, (DoublePointer) null);
                if (sws == null || sws.isNull()) throw new IOException("sws_getContext(" + w + "x" + h + ", pixel format " + format + " -> rgb24) failed");
                AVPixFmtDescriptor d = av_pix_fmt_desc_get(format);
                if (d != null && (d.flags() & (AV_PIX_FMT_FLAG_RGB | AV_PIX_FMT_FLAG_PAL)) == 0) {
                    // YUV: undo the matrix and range the stream says it used (BT.709 as written here, else BT.601).
                    IntPointer table = sws_getCoefficients(f.colorspace() == AVCOL_SPC_BT709 ? SWS_CS_ITU709 : SWS_CS_ITU601);
                    sws_setColorspaceDetails(sws, table, f.color_range() == AVCOL_RANGE_JPEG ? 1 : 0, table, 1, 0, 1 << 16, 1 << 16);
                }
                rgb = new BytePointer((long) w * h * 3);
                // 4-entry plane and stride arrays, as sws_scale reads 4 of each.
                dstPlanes = new PointerPointer<>(rgb, null, null, null);
                dstStrides = new IntPointer(3 * w, 0, 0, 0);
            }
            sws_scale(sws, f.data(), f.linesize(), 0, h, dstPlanes, dstStrides);
            byte[] out = new byte[w * h * 3];
            rgb.get(out);
            return out;
        }

        @Override
        public void close() {
            if (sws != null) sws_freeContext(sws);
            sws = null;
            if (dstPlanes != null) dstPlanes.close();
            if (dstStrides != null) dstStrides.close();
            if (rgb != null) rgb.close();
            dstPlanes = null;
            dstStrides = null;
            rgb = null;
        }
    }

    private static void check(int ret, String what) throws IOException {
        if (ret < 0) throw new IOException(what + ": " + Ffmpeg.error(ret));
    }
}
