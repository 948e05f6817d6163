package io.mmdit4j.pipeline;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.mmdit4j.image.PngImages;
import io.mmdit4j.video.VideoFormat;
import io.mmdit4j.video.VideoReader;

import java.nio.file.Path;

/** The settings record stored in a generated PNG's text chunks or a video's container metadata. */
public final class Recordings {
    private Recordings() {}

    /** Reads and checks the settings record of an image or video made by this engine ({@link GenerationResult#save}). */
    public static GenerationSettings.Recorded read(Path file) {
        String text = VideoFormat.forName(file) != null
                ? VideoReader.probe(file).metadata().get(GenerationSettings.METADATA_KEY)
                : PngImages.readText(file).get(GenerationSettings.METADATA_KEY);
        if (text == null) {
            throw new InvalidRequestException(file + ": no mmdit4j generation settings in this " + (VideoFormat.forName(file) != null ? "video's metadata" : "PNG"));
        }
        try {
            return GenerationSettings.read(new ObjectMapper().readTree(text), file.toString());
        } catch (JsonProcessingException e) {
            throw new InvalidRequestException(file + ": the mmdit4j settings are not valid JSON: " + e.getOriginalMessage());
        }
    }
}
