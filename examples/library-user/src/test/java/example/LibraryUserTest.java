package example;

import io.mmdit4j.cli.Main;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The example's images are the command line's for the same settings; the application ships natives of one platform only. */
class LibraryUserTest {

    private static int cli(String... args) {
        return Main.commandLine().execute(args);
    }

    @Test
    void theGuidedImageIsTheCommandLinesBitForBit(@TempDir Path tmp) throws IOException {
        LibraryUser.main(new String[] {tmp.resolve("lib").toString()});
        Path cli = tmp.resolve("cli.png");
        assertEquals(0, cli("generate", "--prompt", "a lighthouse at dusk", "--seed", "42", "--mg-preset", "aesthetics", "--out", cli.toString()));
        assertArrayEquals(Files.readAllBytes(cli), Files.readAllBytes(tmp.resolve("lib/guided.png")), "same settings, same file");
    }

    @Test
    void eachImageOfTheBatchIsWhatTheCommandLineMakesFromItsSettings(@TempDir Path tmp) throws IOException {
        LibraryUser.main(new String[] {tmp.resolve("lib").toString()});
        Path unguided = tmp.resolve("lib/batch/000-seed7.png"), guided = tmp.resolve("lib/batch/001-seed8.png");
        assertFalse(Arrays.equals(pixels(unguided), pixels(guided)));
        for (Path image : List.of(unguided, guided)) {
            Path again = tmp.resolve("again-" + image.getFileName());
            assertEquals(0, cli("generate", "--from", image.toString(), "--out", again.toString()));
            // made alone rather than in a batch of two: equal up to the batch's float rounding (README: ±1 in a few pixels)
            int[] a = pixels(image), b = pixels(again);
            int worst = 0;
            for (int i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
            assertTrue(worst <= 1, image.getFileName() + ": the CLI's replay differs by up to " + worst + " levels");
        }
        Path plain = tmp.resolve("plain.png");
        assertEquals(0, cli("generate", "--prompt", "a lighthouse at dusk", "--seed", "7", "--out", plain.toString()));
        int[] a = pixels(plain), b = pixels(unguided);
        for (int i = 0; i < a.length; i++) assertTrue(Math.abs(a[i] - b[i]) <= 1, "image 0 is unguided");
    }

    @Test
    void theApplicationShipsTheNativesOfItsOwnPlatformOnly() throws IOException {
        List<Path> jars = Arrays.stream(Files.readString(Path.of(System.getProperty("runtime.classpath"))).trim().split(java.io.File.pathSeparator))
                .map(Path::of).toList();
        long bytes = 0;
        for (Path j : jars) bytes += Files.size(j);
        assertTrue(bytes < 200L * 1024 * 1024, jars.size() + " jars, " + bytes / (1024 * 1024) + " MB: " + jars);
        List<String> pytorchNatives = jars.stream().map(p -> p.getFileName().toString()).filter(n -> n.matches("pytorch-.*-[a-z]+-[a-z0-9_]+\\.jar")).toList();
        assertEquals(1, pytorchNatives.size(), "one platform's libtorch: " + pytorchNatives);
        assertFalse(jars.stream().anyMatch(p -> p.getFileName().toString().startsWith("picocli")), "the engine does not bring the CLI's picocli");
    }

    private static int[] pixels(Path png) throws IOException {
        BufferedImage img = ImageIO.read(png.toFile());
        int[] rgb = img.getRGB(0, 0, img.getWidth(), img.getHeight(), null, 0, img.getWidth());
        int[] out = new int[rgb.length * 3];
        for (int i = 0; i < rgb.length; i++) {
            out[3 * i] = (rgb[i] >> 16) & 255;
            out[3 * i + 1] = (rgb[i] >> 8) & 255;
            out[3 * i + 2] = rgb[i] & 255;
        }
        return out;
    }
}
