package io.mmdit4j.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Progress lines with ETA and it/s when standard error is not a terminal, {@code --quiet}, and {@code --preview}. */
class ProgressAndQuietTest {
    private static final Pattern LINE = Pattern.compile("generate (\\d)/3 it \\(\\d+:\\d\\d:\\d\\d elapsed, ETA \\d+:\\d\\d:\\d\\d, [0-9.?]+ it/s\\) sigma \\d\\.\\d{3}");

    @Test
    void aLogGetsOneOrderedLinePerStepAndQuietOnlyTheFiles(@TempDir Path tmp) throws IOException {
        Path out = tmp.resolve("a.png"), preview = tmp.resolve("preview.png");
        CheckGoldenCommandTest.Run r = CheckGoldenCommandTest.run("generate", "--model", "flux-tiny-demo", "--prompt", "a wolf", "--width", "64", "--height", "48", "--steps", "3",
                "--preview", preview.toString(), "--out", out.toString());
        assertEquals(0, r.exit(), r.err());
        long[] steps = r.err().lines().filter(l -> LINE.matcher(l).matches()).mapToLong(l -> Long.parseLong(l.substring(9, 10))).toArray();
        assertEquals(3, steps.length, r.err());
        for (int i = 0; i < 3; i++) assertEquals(i + 1, steps[i], "in order: " + r.err());
        BufferedImage p = ImageIO.read(preview.toFile());
        assertEquals(8, p.getWidth(), "the latent preview is 1/8 of the image");
        assertEquals(6, p.getHeight());

        Path q = tmp.resolve("q.png");
        r = CheckGoldenCommandTest.run("generate", "--model", "flux-tiny-demo", "-q", "--prompt", "a wolf", "--width", "64", "--height", "48", "--steps", "2", "--out", q.toString());
        assertEquals(0, r.exit(), r.err());
        assertEquals("", r.err(), "--quiet: nothing on standard error");
        assertEquals(q.toString(), r.out().strip(), "only the file written");
        assertTrue(Files.isRegularFile(q));

        r = CheckGoldenCommandTest.run("generate", "--model", "flux-tiny-demo", "--quiet", "--prompt", "x", "--steps", "0", "--out", tmp.resolve("bad.png").toString());
        assertEquals(2, r.exit());
        assertFalse(r.err().isBlank(), "errors still show");
    }
}
