package io.mmdit4j.video;

import io.mmdit4j.image.PngImages;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** Frames as a folder of PNGs, lossless and readable anywhere, next to or instead of a video file. */
public final class VideoFrames {
    private VideoFrames() {}

    /**
     * Writes {@code frame_00000.png}, {@code frame_00001.png}, ... into {@code dir} (created if missing). Every
     * PNG carries {@code metadata} as text chunks plus {@code frame} ("i/F", counting from 0), so each file still
     * says how it was made. Each file appears atomically ({@link PngImages#write}).
     *
     * @return the files written, in frame order
     */
    public static List<Path> writePngs(Path dir, RgbFrames frames, Map<String, String> metadata) {
        if (Files.exists(dir) && !Files.isDirectory(dir)) throw new IllegalArgumentException(dir + ": not a directory");
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new UncheckedIOException(dir + ": cannot create the frame folder: " + e.getMessage(), e);
        }
        int digits = Math.max(5, String.valueOf(frames.count() - 1).length());
        List<Path> out = new ArrayList<>(frames.count());
        for (int i = 0; i < frames.count(); i++) {
            Map<String, String> text = new LinkedHashMap<>();
            if (metadata != null) text.putAll(metadata);
            text.put("frame", i + "/" + frames.count());
            Path file = dir.resolve(String.format(Locale.ROOT, "frame_%0" + digits + "d.png", i));
            PngImages.write(file, frames.image(i), text);
            out.add(file);
        }
        return out;
    }
}
