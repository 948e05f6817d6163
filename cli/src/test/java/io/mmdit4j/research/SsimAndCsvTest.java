package io.mmdit4j.research;

import org.junit.jupiter.api.Test;

import java.awt.image.BufferedImage;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The SSIM of the contact sheets (window and constants as documented) and the CSV quoting of results files. */
class SsimAndCsvTest {
    private static BufferedImage filled(int w, int h, int r, int g, int b) {
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) img.setRGB(x, y, (r << 16) | (g << 8) | b);
        return img;
    }

    @Test
    void constantImagesGiveTheLuminanceTermWithTheDocumentedConstants() {
        double c1 = Math.pow(0.01 * 255, 2);
        double red = (2 * 100.0 * 150 + c1) / (100.0 * 100 + 150.0 * 150 + c1); // contrast/structure terms are C2/C2 = 1
        double expected = (red + 1 + 1) / 3;                                   // green and blue are equal
        assertEquals(expected, Ssim.mean(filled(16, 16, 100, 7, 9), filled(16, 16, 150, 7, 9)), 1e-12);
    }

    @Test
    void identicalIsOneNoiseIsLowAndSizesMustMatch() {
        Random rnd = new Random(1);
        BufferedImage a = new BufferedImage(32, 24, BufferedImage.TYPE_INT_RGB), b = new BufferedImage(32, 24, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < 24; y++) for (int x = 0; x < 32; x++) { a.setRGB(x, y, rnd.nextInt(1 << 24)); b.setRGB(x, y, rnd.nextInt(1 << 24)); }
        assertEquals(1.0, Ssim.mean(a, a), 1e-12);
        assertTrue(Math.abs(Ssim.mean(a, b)) < 0.1, "independent noise");
        assertEquals(Ssim.mean(a, b), Ssim.mean(b, a), 1e-12);
        assertEquals(1.0, Ssim.mean(filled(8, 8, 1, 2, 3), filled(8, 8, 1, 2, 3)), 1e-12, "smaller than the window");
        assertThrows(IllegalArgumentException.class, () -> Ssim.mean(a, filled(8, 8, 0, 0, 0)));
    }

    @Test
    void csvQuotesAndParsesBack() {
        List<String> row = Arrays.asList("plain", "with, comma", "with \"quotes\"", "two\nlines", "", "ünïcödé");
        String text = Csv.line(List.of("a", "b", "c", "d", "e", "f")) + "\n" + Csv.line(row) + "\n";
        List<List<String>> parsed = Csv.parse(text);
        assertEquals(2, parsed.size());
        assertEquals(row, parsed.get(1));
        assertEquals(List.of(List.of("x", "y"), List.of("half")), Csv.parse("x,y\nhalf\n\"cut sho"), "a truncated quoted field is dropped");
    }
}
