package io.mmdit4j.video;

import io.mmdit4j.runtime.Files2;
import org.bytedeco.ffmpeg.avcodec.AVCodec;
import org.bytedeco.ffmpeg.avcodec.AVCodecContext;
import org.bytedeco.ffmpeg.avcodec.AVPacket;
import org.bytedeco.ffmpeg.avformat.AVFormatContext;
import org.bytedeco.ffmpeg.avformat.AVIOContext;
import org.bytedeco.ffmpeg.avformat.AVStream;
import org.bytedeco.ffmpeg.avutil.AVDictionary;
import org.bytedeco.ffmpeg.avutil.AVFrame;
import org.bytedeco.ffmpeg.swscale.SwsContext;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.IntPointer;
import org.bytedeco.javacpp.PointerPointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.bytedeco.ffmpeg.global.avcodec.AV_CODEC_FLAG_GLOBAL_HEADER;
import static org.bytedeco.ffmpeg.global.avcodec.av_packet_alloc;
import static org.bytedeco.ffmpeg.global.avcodec.av_packet_free;
import static org.bytedeco.ffmpeg.global.avcodec.av_packet_rescale_ts;
import static org.bytedeco.ffmpeg.global.avcodec.avcodec_alloc_context3;
import static org.bytedeco.ffmpeg.global.avcodec.avcodec_find_encoder_by_name;
import static org.bytedeco.ffmpeg.global.avcodec.avcodec_free_context;
import static org.bytedeco.ffmpeg.global.avcodec.avcodec_open2;
import static org.bytedeco.ffmpeg.global.avcodec.avcodec_parameters_from_context;
import static org.bytedeco.ffmpeg.global.avcodec.avcodec_receive_packet;
import static org.bytedeco.ffmpeg.global.avcodec.avcodec_send_frame;
import static org.bytedeco.ffmpeg.global.avformat.AVFMT_GLOBALHEADER;
import static org.bytedeco.ffmpeg.global.avformat.AVIO_FLAG_WRITE;
import static org.bytedeco.ffmpeg.global.avformat.av_interleaved_write_frame;
import static org.bytedeco.ffmpeg.global.avformat.av_write_trailer;
import static org.bytedeco.ffmpeg.global.avformat.avformat_alloc_output_context2;
import static org.bytedeco.ffmpeg.global.avformat.avformat_free_context;
import static org.bytedeco.ffmpeg.global.avformat.avformat_new_stream;
import static org.bytedeco.ffmpeg.global.avformat.avformat_write_header;
import static org.bytedeco.ffmpeg.global.avformat.avio_closep;
import static org.bytedeco.ffmpeg.global.avformat.avio_open;
import static org.bytedeco.ffmpeg.global.avutil.AVCOL_PRI_BT709;
import static org.bytedeco.ffmpeg.global.avutil.AVCOL_RANGE_MPEG;
import static org.bytedeco.ffmpeg.global.avutil.AVCOL_SPC_BT709;
import static org.bytedeco.ffmpeg.global.avutil.AVCOL_TRC_BT709;
import static org.bytedeco.ffmpeg.global.avutil.AVERROR_EOF;
import static org.bytedeco.ffmpeg.global.avutil.AV_PIX_FMT_PAL8;
import static org.bytedeco.ffmpeg.global.avutil.AV_PIX_FMT_RGB24;
import static org.bytedeco.ffmpeg.global.avutil.AV_PIX_FMT_YUV420P;
import static org.bytedeco.ffmpeg.global.avutil.av_dict_free;
import static org.bytedeco.ffmpeg.global.avutil.av_frame_alloc;
import static org.bytedeco.ffmpeg.global.avutil.av_frame_free;
import static org.bytedeco.ffmpeg.global.avutil.av_frame_get_buffer;
import static org.bytedeco.ffmpeg.global.avutil.av_frame_make_writable;
import static org.bytedeco.ffmpeg.global.avutil.av_make_q;
import static org.bytedeco.ffmpeg.global.swscale.SWS_ACCURATE_RND;
import static org.bytedeco.ffmpeg.global.swscale.SWS_BILINEAR;
import static org.bytedeco.ffmpeg.global.swscale.SWS_CS_ITU709;
import static org.bytedeco.ffmpeg.global.swscale.sws_freeContext;
import static org.bytedeco.ffmpeg.global.swscale.sws_getCoefficients;
import static org.bytedeco.ffmpeg.global.swscale.sws_getContext;
import static org.bytedeco.ffmpeg.global.swscale.sws_scale;
import static org.bytedeco.ffmpeg.global.swscale.sws_setColorspaceDetails;

/**
 * Writes frames to a video file with FFmpeg; the container follows the extension ({@link VideoFormat}):
 * {@code .mp4} H.264 (openh264, falling back to MPEG-4 Part 2 when openh264 cannot be opened), {@code .webm} VP9,
 * {@code .gif} an animated preview.
 *
 * <p>Generation settings go into the container metadata: MP4 keeps arbitrary keys through
 * {@code movflags=use_metadata_tags} (an {@code mdta} key list), WebM as Matroska tags (whose names FFmpeg
 * upper-cases: {@link VideoReader} gives them back in lower case, so use lower-case keys), GIF as comment extensions
 * ({@link GifComments}). Read them back with {@link VideoReader#probe}. Files are bit-exact: the muxers' and encoders'
 * {@code bitexact} flags leave out random UIDs and version strings, so the same frames and settings give the same bytes.
 *
 * <p>Odd sizes: 4:2:0 chroma needs an even width and height, so H.264, MPEG-4 and VP9 frames with an odd side
 * are <b>padded by one pixel, repeating the last column or row</b>; {@link Written#width()}/{@link Written#height()}
 * report the stored size. GIF keeps the size as is.
 *
 * <p>The file appears atomically: encoding goes to a temporary file in the same directory that is moved over
 * {@code file} on success and deleted on any failure. All FFmpeg objects are freed on every path.
 */
public final class VideoWriter {
    private VideoWriter() {}

    /** What was written: the codec actually used (after any fallback) and the stored size. */
    public record Written(Path file, VideoFormat format, VideoCodec codec, int width, int height, int frames) {}

    /** Writes a uint8 {@code [F, H, W, 3]} or float {@code [F, 3, H, W]} in [-1, 1] tensor; see {@link RgbFrames#fromTensor}. */
    public static Written write(Path file, Tensor video, Map<String, String> metadata, VideoOptions options) {
        VideoFormat.of(file); // an unknown extension fails before the tensor is copied
        return write(file, RgbFrames.fromTensor(video), metadata, options);
    }

    public static Written write(Path file, RgbFrames frames, Map<String, String> metadata, VideoOptions options) {
        VideoFormat format = VideoFormat.of(file);
        List<VideoCodec> codecs = codecs(format, options.codec(), file);
        checkMetadata(metadata);
        Path dir = file.toAbsolutePath().getParent();
        Path tmp;
        try {
            if (Files.isDirectory(file)) throw new IOException("is a directory");
            Files.createDirectories(dir);
            tmp = Files.createTempFile(dir, "." + file.getFileName(), ".part");
        } catch (FileSystemException e) {
            throw new UncheckedIOException(file + ": cannot write video: " + describe(e), e);
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": cannot write video: " + e.getMessage(), e);
        }
        try {
            Written w = encode(tmp, format, codecs, frames, metadata, options);
            if (format == VideoFormat.GIF) GifComments.insert(tmp, metadata); // the GIF muxer has no place for them
            Files2.readableByAll(tmp); // temp files are created 0600
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            return new Written(file, w.format(), w.codec(), w.width(), w.height(), w.frames());
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": cannot write video: " + e.getMessage(), e);
        } finally {
            try {
                Files.deleteIfExists(tmp);
            } catch (IOException ignored) {
                // the move succeeded, or the original failure is more useful than this one
            }
        }
    }

    /** The file and the reason, since a FileSystemException's own message is often just a path. */
    private static String describe(FileSystemException e) {
        String what = e instanceof java.nio.file.FileAlreadyExistsException ? "exists and is not a directory"
                : e instanceof java.nio.file.AccessDeniedException ? "permission denied"
                : e instanceof java.nio.file.NoSuchFileException ? "does not exist"
                : e.getReason() != null ? e.getReason() : e.getClass().getSimpleName();
        return e.getFile() + ": " + what;
    }

    private static List<VideoCodec> codecs(VideoFormat format, VideoCodec forced, Path file) {
        if (forced == null) return format.codecs();
        if (!format.codecs().contains(forced)) {
            throw new IllegalArgumentException(file + ": codec " + forced + " cannot go in " + format.extension() + ", use one of " + format.codecs());
        }
        return List.of(forced);
    }

    private static void checkMetadata(Map<String, String> metadata) {
        if (metadata == null) return;
        metadata.forEach((k, v) -> {
            if (k == null || k.isEmpty() || v == null) throw new IllegalArgumentException("metadata needs non-empty keys and non-null values, got " + k + "=" + v);
            if (k.indexOf('\0') >= 0 || v.indexOf('\0') >= 0) throw new IllegalArgumentException("metadata key " + k + ": NUL characters cannot be stored");
        });
    }

    /**
     * Encodes with the first codec that works (MP4: openh264, else mpeg4). A codec that cannot be opened or fails
     * on a frame is followed by the next one from scratch, into the same temporary file; the error lists every reason.
     */
    private static Written encode(Path out, VideoFormat format, List<VideoCodec> codecs, RgbFrames frames,
                                  Map<String, String> metadata, VideoOptions options) throws IOException {
        List<String> failures = new ArrayList<>();
        for (VideoCodec vc : codecs) {
            boolean pads = vc != VideoCodec.GIF;
            String unsupported = vc.unsupportedSize(frames.width() + (pads ? frames.width() & 1 : 0), frames.height() + (pads ? frames.height() & 1 : 0));
            if (unsupported != null) {
                failures.add(vc.encoder() + ": " + unsupported);
                continue;
            }
            try {
                return encode(out, format, vc, frames, metadata, options);
            } catch (IOException e) {
                failures.add(vc.encoder() + ": " + e.getMessage());
            }
        }
        throw new IOException(String.join("; ", failures));
    }

    private static Written encode(Path out, VideoFormat format, VideoCodec vc, RgbFrames frames,
                                  Map<String, String> metadata, VideoOptions options) throws IOException {
        Ffmpeg.init();
        boolean gif = format == VideoFormat.GIF;
        int w = gif ? frames.width() : frames.width() + (frames.width() & 1);
        int h = gif ? frames.height() : frames.height() + (frames.height() & 1);
        AVFormatContext oc = new AVFormatContext(null);
        AVCodecContext c = null;
        AVFrame frame = null;
        AVPacket pkt = null;
        SwsContext sws = null;
        try (PointerScope scope = new PointerScope()) {
            check(avformat_alloc_output_context2(oc, null, format.muxer(), out.toString()), "avformat_alloc_output_context2(" + format.muxer() + ")");
            AVStream st = avformat_new_stream(oc, null);
            if (st == null || st.isNull()) throw new IOException("avformat_new_stream failed");

            AVCodec codec = avcodec_find_encoder_by_name(vc.encoder());
            if (codec == null || codec.isNull()) throw new IOException("not in this FFmpeg build");
            c = avcodec_alloc_context3(codec);
            if (c == null || c.isNull()) throw new IOException("avcodec_alloc_context3 failed");
            AVDictionary opts = configure(c, vc, w, h, options, (oc.oformat().flags() & AVFMT_GLOBALHEADER) != 0);
            int opened = avcodec_open2(c, codec, opts);
            av_dict_free(opts);
            check(opened, "avcodec_open2");
            check(avcodec_parameters_from_context(st.codecpar(), c), "avcodec_parameters_from_context");
            st.time_base(c.time_base());

            AVDictionary md = new AVDictionary(null);
            if (metadata != null) metadata.forEach((k, v) -> Ffmpeg.set(md, k, v));
            oc.metadata(md); // the format context owns it from here and frees it

            AVIOContext pb = new AVIOContext(null);
            check(avio_open(pb, new BytePointer(out.toString(), StandardCharsets.UTF_8), AVIO_FLAG_WRITE), "avio_open");
            oc.pb(pb);
            AVDictionary headerOpts = new AVDictionary(null);
            // Without use_metadata_tags the MP4 muxer drops every key outside its fixed iTunes list.
            if (format == VideoFormat.MP4) Ffmpeg.set(headerOpts, "movflags", "use_metadata_tags");
            // Reproducible files: no random Matroska segment/track UIDs, no "Lavf x.y" encoder tag.
            Ffmpeg.set(headerOpts, "fflags", "+bitexact");
            int ret = avformat_write_header(oc, headerOpts);
            av_dict_free(headerOpts);
            check(ret, "avformat_write_header");

            frame = av_frame_alloc();
            pkt = av_packet_alloc();
            if (frame == null || pkt == null) throw new OutOfMemoryError("av_frame_alloc/av_packet_alloc");
            frame.format(c.pix_fmt()).width(w).height(h);
            check(av_frame_get_buffer(frame, 0), "av_frame_get_buffer");

            GifPalette palette = gif ? GifPalette.of(frames) : null;
            BytePointer rgb = null;
            PointerPointer<BytePointer> srcPlanes = null;
            IntPointer srcStrides = null;
            if (!gif) {
                sws = sws_getContext(w, h, AV_PIX_FMT_RGB24, w, h, AV_PIX_FMT_YUV420P, SWS_BILINEAR | SWS_ACCURATE_RND,
                        null, null, (DoublePointer) null);
                if (sws == null || sws.isNull()) throw new IOException("sws_getContext(" + w + "x" + h + " rgb24 -> yuv420p) failed");
                // RGB is full range; the stream is tagged BT.709 limited range, so convert with those coefficients.
                IntPointer bt709 = sws_getCoefficients(SWS_CS_ITU709);
                sws_setColorspaceDetails(sws, bt709, 1, bt709, 0, 0, 1 << 16, 1 << 16);
                rgb = new BytePointer((long) w * h * 3);
                // sws_scale reads 4 plane pointers and 4 strides: shorter arrays crash inside libswscale (FFmpeg 8).
                srcPlanes = new PointerPointer<>(rgb, null, null, null);
                srcStrides = new IntPointer(3 * w, 0, 0, 0);
            }
            byte[] padded = gif ? null : new byte[w * h * 3];
            for (int i = 0; i < frames.count(); i++) {
                check(av_frame_make_writable(frame), "av_frame_make_writable");
                if (gif) {
                    palette.fill(frames.frame(i), frames.width(), frames.height(), frame);
                } else {
                    rgb.put(pad(frames.frame(i), frames.width(), frames.height(), w, h, padded));
                    sws_scale(sws, srcPlanes, srcStrides, 0, h, frame.data(), frame.linesize());
                }
                frame.pts(i);
                check(avcodec_send_frame(c, frame), "avcodec_send_frame");
                drain(c, oc, st, pkt);
            }
            check(avcodec_send_frame(c, null), "avcodec_send_frame(flush)");
            drain(c, oc, st, pkt);
            check(av_write_trailer(oc), "av_write_trailer");
            return new Written(out, format, vc, w, h, frames.count());
        } finally {
            if (sws != null) sws_freeContext(sws);
            if (frame != null) av_frame_free(frame);
            if (pkt != null) av_packet_free(pkt);
            if (c != null) avcodec_free_context(c);
            if (!oc.isNull()) {
                AVIOContext pb = oc.pb();
                if (pb != null && !pb.isNull()) {
                    avio_closep(pb);
                    oc.pb(null);
                }
                avformat_free_context(oc); // frees the streams and the metadata dictionary
            }
        }
    }

    /** Codec settings; returns the private options for avcodec_open2 (the caller frees them). */
    private static AVDictionary configure(AVCodecContext c, VideoCodec vc, int w, int h, VideoOptions options, boolean globalHeader) {
        int fps = options.fps();
        c.width(w).height(h).time_base(av_make_q(1, fps)).framerate(av_make_q(fps, 1));
        c.gop_size(Math.max(1, fps)); // a key frame every second keeps seeking cheap
        if (globalHeader) c.flags(c.flags() | AV_CODEC_FLAG_GLOBAL_HEADER);
        AVDictionary opts = new AVDictionary(null);
        Ffmpeg.set(opts, "flags", "+bitexact"); // no encoder version strings in the stream
        if (vc == VideoCodec.GIF) {
            c.pix_fmt(AV_PIX_FMT_PAL8);
            return opts;
        }
        c.pix_fmt(AV_PIX_FMT_YUV420P);
        c.colorspace(AVCOL_SPC_BT709).color_primaries(AVCOL_PRI_BT709).color_trc(AVCOL_TRC_BT709).color_range(AVCOL_RANGE_MPEG);
        switch (vc) {
            case H264, MPEG4 -> {
                c.bit_rate(options.bitRateFor(w, h));
                c.max_b_frames(0);
            }
            case VP9 -> {
                // Constant quality (crf with bit rate 0); "good" at cpu-used 5 is several times faster than the default.
                c.bit_rate(0);
                Ffmpeg.set(opts, "crf", "30");
                Ffmpeg.set(opts, "deadline", "good");
                Ffmpeg.set(opts, "cpu-used", "5");
                Ffmpeg.set(opts, "row-mt", "1");
            }
            default -> throw new IllegalStateException(vc.toString());
        }
        return opts;
    }

    private static void drain(AVCodecContext c, AVFormatContext oc, AVStream st, AVPacket pkt) throws IOException {
        while (true) {
            int ret = avcodec_receive_packet(c, pkt);
            if (ret == Ffmpeg.EAGAIN || ret == AVERROR_EOF) return;
            check(ret, "avcodec_receive_packet");
            // Every frame lasts one tick of 1/fps. Some encoders (openh264) leave the duration 0, and MP4 then
            // stores a zero-length last sample that demuxers drop.
            if (pkt.duration() <= 0) pkt.duration(1);
            av_packet_rescale_ts(pkt, c.time_base(), st.time_base());
            pkt.stream_index(st.index());
            check(av_interleaved_write_frame(oc, pkt), "av_interleaved_write_frame"); // takes the packet's data
        }
    }

    /** The frame as is when the size is already even, else copied into {@code w×h} repeating the last column/row. */
    private static byte[] pad(byte[] src, int sw, int sh, int w, int h, byte[] dst) {
        if (sw == w && sh == h) return src;
        for (int y = 0; y < h; y++) {
            int sy = Math.min(y, sh - 1);
            System.arraycopy(src, sy * sw * 3, dst, y * w * 3, sw * 3);
            if (w > sw) System.arraycopy(src, (sy * sw + sw - 1) * 3, dst, (y * w + sw) * 3, 3);
        }
        return dst;
    }

    private static void check(int ret, String what) throws IOException {
        if (ret < 0) throw new IOException(what + ": " + Ffmpeg.error(ret));
    }
}
