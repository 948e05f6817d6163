package io.mmdit4j.research;

import org.junit.jupiter.api.Test;

import java.awt.image.BufferedImage;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Contact-sheet layout: small images enlarged by an integer factor, large ones shrunk, labels and missing cells drawn. */
class ContactSheetTest {
    private static BufferedImage red(int w, int h) {
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) img.setRGB(x, y, 0xff0000);
        return img;
    }

    /** Widest horizontal run of pure red pixels on any row: the drawn width of one image. */
    private static int redRun(BufferedImage sheet) {
        int best = 0;
        for (int y = 0; y < sheet.getHeight(); y++) {
            int run = 0;
            for (int x = 0; x < sheet.getWidth(); x++) {
                run = (sheet.getRGB(x, y) & 0xffffff) == 0xff0000 ? run + 1 : 0;
                best = Math.max(best, run);
            }
        }
        return best;
    }

    private static BufferedImage sheet(BufferedImage img) {
        return ContactSheet.render("title\nsecond line", List.of("w=1", "w=3"), List.of("layers 1-", "layers 3~2"),
                List.of(List.of(new ContactSheet.Cell(img, "SSIM 0.5"), new ContactSheet.Cell(null, "")),
                        List.of(new ContactSheet.Cell(img, "a"), new ContactSheet.Cell(img, "b"))));
    }

    @Test
    void smallImagesAreEnlargedAndLargeOnesShrunk() {
        assertEquals(128, redRun(sheet(red(32, 32))), "32 px x 4");
        assertEquals(144, redRun(sheet(red(48, 48))), "48 px x 3");
        assertEquals(ContactSheet.MAX_CELL, redRun(sheet(red(640, 640))), "shrunk to the maximum");
        BufferedImage s = sheet(red(64, 64));
        assertTrue(s.getWidth() >= 2 * 128 && s.getHeight() >= 2 * 128, s.getWidth() + "x" + s.getHeight());
    }
}
