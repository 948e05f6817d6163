package io.mmdit4j.cli;

import io.mmdit4j.video.RgbFrames;
import io.mmdit4j.video.VideoOptions;
import io.mmdit4j.video.VideoWriter;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code mmdit inspect video.mp4} prints the stream and the stored settings. */
class InspectVideoTest {
    @TempDir
    Path dir;

    @Test
    void printsStreamAndSettings() {
        Map<String, String> settings = new LinkedHashMap<>();
        settings.put("mmdit4j", "{\"seed\":7}");
        settings.put("prompt", "a fox");
        Path mp4 = dir.resolve("fox.mp4");
        VideoWriter.write(mp4, new RgbFrames(32, 16, Collections.nCopies(3, new byte[32 * 16 * 3])), settings, VideoOptions.fps(6));
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("inspect", mp4.toString());
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("h264, 32x16, 6.00 fps, 3 frames"), r.out());
        assertTrue(r.out().contains("mmdit4j: {\"seed\":7}\n") && r.out().contains("prompt: a fox\n"), r.out());

        CheckGoldenCommandTest.Run missing = CheckGoldenCommandTest.run("inspect", dir.resolve("none.webm").toString());
        assertEquals(2, missing.exit());
        assertTrue(missing.err().contains("none.webm: not a file"), missing.err());
    }
}
