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
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Where a generation's images and videos go, and how: one file when {@code out} has an image or video extension, else a
 * folder of {@code NNN-seedS.png} / {@code .mp4}; each file carries its settings record ({@link GenerationSettings#metadata}).
 * {@link #check} validates a destination before any work, so a bad {@code --out} fails in a second, not after the run.
 *
 * <p>Nothing is overwritten unless asked ({@link Existing}): a file that exists is refused, and a folder continues its
 * numbering after the highest {@code NNN} it holds. Each file appears atomically (written to a {@code .part} file, then
 * moved); the {@code .part} files a killed run left behind are deleted by the next run that writes into the folder
 * (runs writing into one folder take turns, {@link OutputLock}, so no live one is touched). When writing fails part way
 * (a full disk), {@link OutputWriteException} names the complete files written and the first one that was not.
 */
public final class Outputs {
    private Outputs() {}

    /** What happens to files that already exist at the destination. */
    public enum Existing {
        /** The default: a single {@code out} file that exists is refused; a folder continues its numbering. */
        KEEP,
        /** {@code --overwrite}: a single file is replaced; a folder is numbered from 000 again, replacing files of the same names. */
        REPLACE
    }

    /** Writes one file of a result; a seam for tests (a failing disk). */
    @FunctionalInterface
    interface FileWriter {
        void write(Path file, GenerationResult r, int i, Map<String, String> metadata);
    }

    /** {@code NNN-seedS.png}, {@code .mp4}, ... and the frame folders {@code NNN-seedS} of several videos. */
    private static final Pattern NUMBERED = Pattern.compile("(\\d{3,})-seed\\d+(\\.(png|mp4|webm|gif))?");
    private static final Pattern FRAME = Pattern.compile("frame_\\d+\\.png");

    /** Whether {@code out} names a single PNG file. */
    public static boolean isImageFile(Path out) {
        Path name = out.getFileName();
        return name != null && name.toString().toLowerCase(Locale.ROOT).endsWith(".png");
    }

    /** Whether {@code out} names one file (an image or a video) rather than a folder. */
    public static boolean isSingleFile(Path out) {
        return isImageFile(out) || VideoFormat.forName(out) != null;
    }

    /** Checks that {@code count} images (or videos) can be written to {@code out} without overwriting anything. */
    public static void check(Path out, int count, boolean video) {
        check(out, count, video, Existing.KEEP);
    }

    /** Checks that {@code count} images (or videos) can be written to {@code out}. */
    public static void check(Path out, int count, boolean video, Existing existing) {
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
        if (single && Files.isDirectory(out)) throw new InvalidRequestException("--out " + out + ": is a folder, not a file");
        if (!single && Files.exists(out) && !Files.isDirectory(out)) throw new InvalidRequestException("--out " + out + ": is a file, not a folder");
        if (single && existing == Existing.KEEP && Files.exists(out)) {
            throw new InvalidRequestException("--out " + out + ": the file exists; give --overwrite to replace it, or another name");
        }
        checkWritable(single ? out.toAbsolutePath().getParent() : out);
    }

    /**
     * {@link #check(Path, int, boolean, Existing)} for the images of {@code s}, and that the disk has room for them: a PNG
     * of noise-like pixels does not compress, so each may take its raw 3·W·H bytes.
     */
    public static void check(Path out, GenerationSettings s, boolean video, Existing existing) {
        check(out, s.images(), video, existing);
        if (video) return; // compressed streams: no useful bound
        long worst = s.images() * (3L * s.width() * s.height() + s.height() + 65_536L);
        long free = usableSpace(isSingleFile(out) ? out.toAbsolutePath().getParent() : out);
        if (free >= 0 && free < worst) {
            throw new InvalidRequestException(String.format(Locale.ROOT, "--out %s: %d images of %dx%d need up to %.1f MB, but its disk has %.1f MB free",
                    out, s.images(), s.width(), s.height(), worst / 1e6, free / 1e6));
        }
    }

    /** Fails unless {@code dir} is, or can be created as, a writable folder. */
    public static void checkWritable(Path dir) {
        Path p = dir.toAbsolutePath();
        while (p != null && !Files.exists(p)) p = p.getParent();
        if (p == null || !Files.isDirectory(p)) throw new InvalidRequestException("--out " + dir + ": " + p + " is not a folder");
        if (!Files.isWritable(p)) throw new InvalidRequestException("--out " + dir + ": " + p + " is not writable");
    }

    /** Writes every image or video of {@code r} without overwriting anything (see {@link GenerationResult#save}). */
    public static List<Path> write(GenerationResult r, Path out) {
        return write(r, out, Existing.KEEP);
    }

    /** Writes every image or video of {@code r}; {@code existing} says what happens to files already there. */
    public static List<Path> write(GenerationResult r, Path out, Existing existing) {
        return write(r, out, existing, Outputs::writeFile);
    }

    static List<Path> write(GenerationResult r, Path out, Existing existing, FileWriter writer) {
        check(out, r.count(), r.isVideo(), existing);
        boolean single = isSingleFile(out);
        Path dir = single ? out.toAbsolutePath().getParent() : out;
        mkdirs(dir);
        GenerationSettings s = r.settings();
        String ext = r.isVideo() ? "mp4" : "png";
        List<Path> files = new ArrayList<>();
        try (OutputLock lock = OutputLock.acquire(dir)) {
            deleteLeftovers(dir, single ? out.getFileName().toString() : null);
            if (single && existing == Existing.KEEP && Files.exists(out)) { // made while this run computed
                throw new InvalidRequestException("--out " + out + ": the file exists; give --overwrite to replace it, or another name");
            }
            int first = single || existing == Existing.REPLACE ? 0 : nextNumber(dir);
            for (int i = 0; i < r.count(); i++) {
                Path f = single ? out : dir.resolve(numbered(first + i, s.seed(i), ext));
                try {
                    writer.write(f, r, i, s.metadata(i));
                } catch (RuntimeException e) {
                    throw failed(out, r, files, f, e);
                }
                files.add(f);
            }
        }
        return files;
    }

    /**
     * Writes image {@code i} of {@code r} to the PNG file {@code file} with that image's own settings record
     * ({@link GenerationSettings#metadata}), atomically (a {@code .part} file, then a move), under the folder's
     * {@link OutputLock}; a killed write's {@code .part} leftovers of that name are deleted first. For jobs that name each
     * image themselves (one file per table row). {@link Existing#KEEP} refuses a file that exists, {@link Existing#REPLACE}
     * replaces it.
     */
    public static Path writeImage(GenerationResult r, int i, Path file, Existing existing) {
        if (r.isVideo()) throw new InvalidRequestException(file + ": this generation made videos, not images");
        if (!isImageFile(file)) throw new InvalidRequestException(file + ": an image file must end in .png");
        if (i < 0 || i >= r.count()) throw new IndexOutOfBoundsException("image " + i + " of " + r.count());
        Path dir = file.toAbsolutePath().getParent();
        mkdirs(dir);
        try (OutputLock lock = OutputLock.acquire(dir)) {
            deleteLeftovers(dir, file.getFileName().toString());
            if (existing == Existing.KEEP && Files.exists(file)) {
                throw new InvalidRequestException(file + ": the file exists; replace it explicitly, or give another name");
            }
            writeFile(file, r, i, r.settings().metadata(i));
        }
        return file;
    }

    /**
     * Checks, before any work, that {@code count} videos' frames can go to {@code dir} (see {@link #writeFramePngs})
     * without overwriting frames: the folder may hold none (one video), or no numbered frame folders (several, whose
     * names follow the videos' and may repeat an earlier run's).
     */
    public static void checkFramePngs(Path dir, int count, Existing existing) {
        if (Files.exists(dir) && !Files.isDirectory(dir)) throw new InvalidRequestException("--png-frames " + dir + ": not a folder");
        if (existing == Existing.KEEP && (count == 1 ? holdsFrames(dir) : holdsFrameFolders(dir))) {
            throw new InvalidRequestException("--png-frames " + dir + ": the folder holds frames already; give --overwrite to replace them, or another folder");
        }
        checkWritable(dir);
    }

    /**
     * Writes each frame of every video as a PNG with the video's settings: into {@code dir} for one video, else into
     * {@code dir/<video file name without extension>/} ({@code videos}: the files {@link #write} returned).
     */
    public static List<Path> writeFramePngs(GenerationResult r, Path dir, List<Path> videos, Existing existing) {
        if (videos.size() != r.count()) throw new IllegalArgumentException(videos.size() + " video files for " + r.count() + " videos");
        checkFramePngs(dir, r.count(), existing);
        mkdirs(dir);
        List<Path> files = new ArrayList<>();
        GenerationSettings s = r.settings();
        try (OutputLock lock = OutputLock.acquire(dir)) {
            for (int i = 0; i < r.count(); i++) {
                String name = videos.get(i).getFileName().toString();
                Path d = r.count() == 1 ? dir : dir.resolve(name.substring(0, name.lastIndexOf('.')));
                mkdirs(d);
                deleteLeftovers(d, null);
                files.addAll(VideoFrames.writePngs(d, frames(r, i), s.metadata(i)));
            }
        }
        return files;
    }

    private static void writeFile(Path f, GenerationResult r, int i, Map<String, String> metadata) {
        if (r.isVideo()) {
            VideoWriter.write(f, frames(r, i), metadata, VideoOptions.fps(fps(r.settings()))); // atomic: a failed encode leaves nothing behind
        } else {
            PngImages.write(f, r.image(i), metadata); // atomic: through a .part file
        }
    }

    private static String numbered(int n, long seed, String ext) {
        return String.format(Locale.ROOT, "%03d-seed%s.%s", n, Long.toUnsignedString(seed), ext);
    }

    /** One more than the highest {@code NNN} of the folder's numbered files and frame folders (0 for none). */
    static int nextNumber(Path dir) {
        long max = -1;
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
            for (Path p : ds) {
                Matcher m = NUMBERED.matcher(p.getFileName().toString());
                if (m.matches() && m.group(1).length() <= 9) max = Math.max(max, Long.parseLong(m.group(1)));
            }
        } catch (IOException e) {
            throw new UncheckedIOException(dir + ": cannot list the output folder: " + e.getMessage(), e);
        }
        if (max + 1 > Integer.MAX_VALUE - GenerationRequest.MAX_IMAGES) throw new InvalidRequestException("--out " + dir + ": numbering is exhausted");
        return (int) (max + 1);
    }

    /**
     * Deletes the {@code .part} files of outputs this class writes ({@code NNN-seedS.*}, {@code frame_N.png}, or the file
     * {@code single}) that a killed run left in {@code dir}. Called under the folder's {@link OutputLock}: no writer is active.
     */
    static int deleteLeftovers(Path dir, String single) {
        int n = 0;
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, ".*.part")) {
            for (Path p : ds) {
                if (Files.isRegularFile(p) && isLeftoverOf(p.getFileName().toString(), single)) {
                    Files.deleteIfExists(p);
                    n++;
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(dir + ": cannot clean up unfinished files: " + e.getMessage(), e);
        }
        return n;
    }

    /**
     * Whether {@code part} is a temporary file of one of our outputs: {@link PngImages} and {@link VideoWriter} write
     * {@code "." + name + digits + ".part"} next to the file (names may end in digits themselves, {@code .mp4}).
     */
    static boolean isLeftoverOf(String part, String single) {
        if (!part.startsWith(".") || !part.endsWith(".part")) return false;
        String base = part.substring(1, part.length() - ".part".length());
        for (int end = base.length(); end > 0; end--) {
            String target = base.substring(0, end);
            if (NUMBERED.matcher(target).matches() || FRAME.matcher(target).matches() || target.equals(single)) return true;
            if (!Character.isDigit(base.charAt(end - 1))) return false; // only the random digits may follow the name
        }
        return false;
    }

    private static boolean holdsFrameFolders(Path dir) {
        if (!Files.isDirectory(dir)) return false;
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, p -> Files.isDirectory(p) && NUMBERED.matcher(p.getFileName().toString()).matches())) {
            return ds.iterator().hasNext();
        } catch (IOException e) {
            throw new UncheckedIOException(dir + ": cannot list: " + e.getMessage(), e);
        }
    }

    private static boolean holdsFrames(Path dir) {
        if (!Files.isDirectory(dir)) return false;
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, "frame_*.png")) {
            return ds.iterator().hasNext();
        } catch (IOException e) {
            throw new UncheckedIOException(dir + ": cannot list: " + e.getMessage(), e);
        }
    }

    private static OutputWriteException failed(Path out, GenerationResult r, List<Path> written, Path failedFile, RuntimeException e) {
        String what = r.isVideo() ? "videos" : "images";
        String cause = e.getMessage() == null ? e.toString() : e.getMessage();
        String msg = written.isEmpty()
                ? String.format(Locale.ROOT, "--out %s: no %s written: %s", out, what, cause)
                : String.format(Locale.ROOT, "--out %s: wrote %d of %d %s (%s); %s and the rest were not written: %s", out, written.size(), r.count(),
                what, String.join(", ", written.stream().map(Path::toString).toList()), failedFile, cause);
        IOException io = e instanceof UncheckedIOException u ? u.getCause() : new IOException(cause, e);
        return new OutputWriteException(msg, written, io);
    }

    private static long usableSpace(Path dir) {
        Path p = dir.toAbsolutePath();
        while (p != null && !Files.exists(p)) p = p.getParent();
        try {
            return p == null ? -1 : Files.getFileStore(p).getUsableSpace();
        } catch (IOException e) {
            return -1; // unknown: the write itself reports a full disk
        }
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
