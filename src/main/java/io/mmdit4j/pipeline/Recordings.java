package io.mmdit4j.pipeline;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.mmdit4j.image.ImageFormatException;
import io.mmdit4j.image.PngImages;
import io.mmdit4j.io.FileErrors;
import io.mmdit4j.video.VideoFormat;
import io.mmdit4j.video.VideoReader;

import java.io.UncheckedIOException;
import java.nio.file.Path;

/** The settings record stored in a generated PNG's text chunks or a video's container metadata. */
public final class Recordings {
    private Recordings() {}

    /** Strict: text after the record is a damaged record, not something to ignore. */
    private static final ObjectMapper JSON = new ObjectMapper().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    /**
     * Reads and checks the settings record of an image or video made by this engine ({@link GenerationResult#save}). Every
     * failure, from an unreadable or corrupt file to a damaged record, is an {@link InvalidRequestException}.
     */
    public static GenerationSettings.Recorded read(Path file) {
        boolean video = VideoFormat.forName(file) != null;
        String text;
        try {
            text = video ? VideoReader.probe(file).metadata().get(GenerationSettings.METADATA_KEY)
                    : PngImages.readText(file).get(GenerationSettings.METADATA_KEY);
        } catch (ImageFormatException | UncheckedIOException e) {
            throw new InvalidRequestException(e.getMessage(), e);
        } catch (IllegalArgumentException e) { // VideoReader: not a file
            throw e instanceof InvalidRequestException ? e : new InvalidRequestException(e.getMessage(), e);
        }
        if (text == null) {
            throw new InvalidRequestException(file + ": no mmdit4j generation settings in this " + (video ? "video's metadata" : "PNG"));
        }
        JsonNode json;
        try {
            json = JSON.readTree(text);
        } catch (JsonProcessingException e) {
            throw new InvalidRequestException(file + ": the mmdit4j settings are not valid JSON: " + FileErrors.printable(e.getOriginalMessage()));
        }
        if (json == null || !json.isObject()) throw new InvalidRequestException(file + ": the mmdit4j settings are not a JSON object");
        return GenerationSettings.read(json, file.toString());
    }
}
