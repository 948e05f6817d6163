package io.mmdit4j.pipeline;

import io.mmdit4j.image.PngImages;
import io.mmdit4j.video.RgbFrames;
import io.mmdit4j.video.VideoFormat;
import io.mmdit4j.video.VideoFrames;
import io.mmdit4j.video.VideoOptions;
import io.mmdit4j.video.VideoWriter;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Where a generation's images and videos go, and how: one file when {@code out} has an image or video extension, else a
 * folder of {@code NNN-seedS.png} / {@code .mp4}; each file carries its settings record ({@link GenerationSettings#metadata}).
 * {@link #check} validates a destination before any work, so a bad {@code --out} fails in a second, not after the run.
 */
public final class Outputs {
    private Outputs() {}

    /** Whether {@code out} names a single PNG file. */
    public static boolean isImageFile(Path out) {
        Path name = out.getFileName();
        return name != null && name.toString().toLowerCase(Locale.ROOT).endsWith(".png");
    }

    /** Checks that {@code count} images (or videos) can be written to {@code out}. */
    public static void check(Path out, int count, boolean video) {
        VideoFormat vf = VideoFormat.forName(out);
        boolean png = isImageFile(out);
        if (video && png) throw new InvalidRequestException("--out " + out + ": a PNG file, but the model makes videos (give .mp4, .webm, .gif or a folder)");
        if (!video && vf != null) throw new InvalidRequestException("--out " + out + ": a video file, but the model makes images (give a .png or a folder)");
        String name = out.getFileName() == null ? "" : out.getFileName().toString();
        if (!png && vf == null && name.contains(".") && !Files.isDirectory(out)) {
            throw new InvalidRequestException("--out " + out + (video ? ": unknown video extension, expected .mp4 (H.264), .webm (VP9) or .gif"
                    : ": unknown image extension, expected .png") + ", or a folder");
        }
        boolean single = png || vf != null;
        if (single && count > 1) {
            throw new InvalidRequestException("--out " + out + " names one file but " + count + (video ? " videos" : " images") + " will be made; give a folder");
        }
        checkWritable(single ? out.toAbsolutePath().getParent() : out);
    }

    /** Fails unless {@code dir} is, or can be created as, a writable folder. */
    public static void checkWritable(Path dir) {
        Path p = dir.toAbsolutePath();
        while (p != null && !Files.exists(p)) p = p.getParent();
        if (p == null || !Files.isDirectory(p)) throw new InvalidRequestException("--out " + dir + ": " + p + " is not a folder");
        if (!Files.isWritable(p)) throw new InvalidRequestException("--out " + dir + ": " + p + " is not writable");
    }

    /** Writes every image or video of {@code r} (see {@link GenerationResult#save}). */
    public static List<Path> write(GenerationResult r, Path out) {
        check(out, r.count(), r.isVideo());
        boolean single = isImageFile(out) || VideoFormat.forName(out) != null;
        List<Path> files = new ArrayList<>();
        GenerationSettings s = r.settings();
        for (int i = 0; i < r.count(); i++) {
            Map<String, String> text = s.metadata(i);
            if (r.isVideo()) {
                Path f = single ? out : out.resolve(String.format(Locale.ROOT, "%03d-seed%s.mp4", i, Long.toUnsignedString(s.seed(i))));
                VideoWriter.write(f, frames(r, i), text, VideoOptions.fps(fps(s))); // atomic: a failed encode leaves nothing behind
                files.add(f);
            } else {
                Path f = single ? out : out.resolve(String.format(Locale.ROOT, "%03d-seed%s.png", i, Long.toUnsignedString(s.seed(i))));
                mkdirs(f.toAbsolutePath().getParent());
                PngImages.write(f, r.image(i), text);
                files.add(f);
            }
        }
        return files;
    }

    /**
     * Writes each frame of every video as a PNG with the video's settings: into {@code dir} for one video, else into
     * {@code dir/NNN-seedS/}.
     */
    public static List<Path> writeFramePngs(GenerationResult r, Path dir) {
        List<Path> files = new ArrayList<>();
        GenerationSettings s = r.settings();
        for (int i = 0; i < r.count(); i++) {
            Path d = r.count() == 1 ? dir : dir.resolve(String.format(Locale.ROOT, "%03d-seed%s", i, Long.toUnsignedString(s.seed(i))));
            files.addAll(VideoFrames.writePngs(d, frames(r, i), s.metadata(i)));
        }
        return files;
    }

    private static RgbFrames frames(GenerationResult r, int i) {
        try (PointerScope scope = new PointerScope()) {
            Tensor video = r.frames().select(0, i);                                        // [F, 3, H, W] in [0, 1]
            return RgbFrames.fromTensor(video.mul(new Scalar(2.0)).sub(new Scalar(1.0))); // RgbFrames maps [-1, 1]
        }
    }

    private static int fps(GenerationSettings s) {
        FrameRate r = s.option(FrameRate.class);
        return r == null ? 15 : r.fps();
    }

    private static void mkdirs(Path dir) {
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new UncheckedIOException(dir + ": cannot create folder: " + e.getMessage(), e);
        }
    }
}
