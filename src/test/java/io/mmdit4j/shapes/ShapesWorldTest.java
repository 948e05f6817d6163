package io.mmdit4j.shapes;

import org.junit.jupiter.api.Test;

import java.awt.image.BufferedImage;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The shapes world's renderer and captions, and the analyzer on clean and noisy renders. */
class ShapesWorldTest {
    static BufferedImage noisy(BufferedImage img, double sigma, long seed) {
        Random r = new Random(seed);
        BufferedImage out = new BufferedImage(img.getWidth(), img.getHeight(), BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < img.getHeight(); y++) {
            for (int x = 0; x < img.getWidth(); x++) {
                int p = img.getRGB(x, y), q = 0;
                for (int s = 16; s >= 0; s -= 8) {
                    int v = (int) Math.round(((p >> s) & 0xff) + r.nextGaussian() * sigma);
                    q = (q << 8) | Math.max(0, Math.min(255, v));
                }
                out.setRGB(x, y, q);
            }
        }
        return out;
    }

    @Test
    void scenesAreSeededVariedAndCaptioned() {
        ShapesWorld w = ShapesWorld.demo(7);
        assertEquals(w.scene(12).toString(), w.scene(12).toString());
        assertNotEquals(w.scene(12).toString(), ShapesWorld.demo(8).scene(12).toString());
        Set<String> captions = new HashSet<>();
        Set<Integer> counts = new HashSet<>();
        for (int i = 0; i < 300; i++) {
            Scene s = w.scene(i);
            captions.add(s.caption().replaceAll("[a-z]+ (circle|square|triangle)s?", "X"));
            counts.add(s.count());
            assertNotEquals(s.colour(), s.background());
        }
        assertTrue(captions.size() >= 5, "varied templates: " + captions);
        assertEquals(Set.of(1, 2, 3, 4), counts);
        Scene s = w.scene(3, Scene.Size.SMALL, Scene.Palette.RED, Scene.Shape.CIRCLE, Scene.Palette.BLUE, 1);
        assertEquals("three small red circles on a blue background", s.caption());
        assertEquals("a large yellow triangle", new ShapesWorld.Template("{count} {size} {colour} {shape}", s.mentions())
                .caption(1, Scene.Size.LARGE, Scene.Palette.YELLOW, Scene.Shape.TRIANGLE, Scene.Palette.BLACK));
    }

    @Test
    void rendersAreAntialiased() {
        Scene s = ShapesWorld.demo(1).scene(1, Scene.Size.LARGE, Scene.Palette.WHITE, Scene.Shape.CIRCLE, Scene.Palette.BLACK, 3);
        BufferedImage img = ShapesWorld.render(s);
        Set<Integer> greys = new HashSet<>();
        for (int y = 0; y < 64; y++) for (int x = 0; x < 64; x++) greys.add(img.getRGB(x, y) & 0xff);
        assertTrue(greys.size() > 10, "edge pixels blend: " + greys.size() + " levels");
    }

    @Test
    void analyzerIsExactOnCleanRenders() {
        ShapesWorld w = ShapesWorld.demo(11);
        for (int i = 0; i < 400; i++) {
            Scene s = w.scene(i);
            ShapesAnalyzer.Analysis a = ShapesAnalyzer.analyze(ShapesWorld.render(s));
            assertEquals(s.count(), a.count(), s + ": " + a);
            assertEquals(s.background(), a.background(), s + ": " + a);
            for (ShapesAnalyzer.Found f : a.objects()) {
                assertEquals(s.colour(), f.colour(), s + ": " + a);
                assertEquals(s.shape(), f.shape(), s + ": " + a);
                assertEquals(s.size(), f.size(), s + ": " + a);
            }
            assertTrue(ShapesAnalyzer.score(s, a).all());
        }
    }

    /** Fully right (count, colour, shape, size, background) on renders with Gaussian pixel noise of σ (0..255 scale). */
    static double accuracyWithNoise(double sigma, int n) {
        ShapesWorld w = ShapesWorld.demo(12);
        int ok = 0;
        for (int i = 0; i < n; i++) {
            Scene s = w.scene(i);
            if (ShapesAnalyzer.score(s, ShapesAnalyzer.analyze(noisy(ShapesWorld.render(s), sigma, i))).all()) ok++;
        }
        return ok / (double) n;
    }

    @Test
    void analyzerIsRobustToNoise() {
        double moderate = accuracyWithNoise(10, 300), heavy = accuracyWithNoise(20, 300);
        // measured 300 of 300 at both (and at σ 30); the thresholded-corner reading before read 299 and 298 (282 at σ 30)
        assertTrue(moderate >= 0.99, "noise σ 10: " + moderate + " fully right");
        assertTrue(heavy >= 0.98, "noise σ 20: " + heavy + " fully right");
    }

    /** A Gaussian blur of σ pixels (separable, edges kept), like a decoder's softened edges. */
    static BufferedImage blurred(BufferedImage img, double sigma) {
        int r = (int) Math.ceil(3 * sigma), n = 2 * r + 1;
        float[] k = new float[n];
        float sum = 0;
        for (int i = 0; i < n; i++) sum += k[i] = (float) Math.exp(-(i - r) * (i - r) / (2 * sigma * sigma));
        for (int i = 0; i < n; i++) k[i] /= sum;
        java.awt.image.ConvolveOp h = new java.awt.image.ConvolveOp(new java.awt.image.Kernel(n, 1, k), java.awt.image.ConvolveOp.EDGE_NO_OP, null);
        java.awt.image.ConvolveOp v = new java.awt.image.ConvolveOp(new java.awt.image.Kernel(1, n, k), java.awt.image.ConvolveOp.EDGE_NO_OP, null);
        return v.filter(h.filter(img, null), null);
    }

    /**
     * Shapes read through blur: the shape comes from the soft silhouette, so blurred corners and tips still count. With a
     * 2-pixel blur 734 of 735 objects found were read right; the thresholded-corner reading before it read 704 (small
     * squares as discs, as in the demo VAE's reconstructions).
     */
    @Test
    void analyzerReadsShapesThroughBlur() {
        ShapesWorld w = ShapesWorld.demo(14);
        int objects = 0, right = 0;
        for (int i = 0; i < 300; i++) {
            Scene s = w.scene(i);
            for (ShapesAnalyzer.Found f : ShapesAnalyzer.analyze(blurred(ShapesWorld.render(s), 2.0)).objects()) {
                objects++;
                if (f.shape() == s.shape()) right++;
            }
        }
        assertTrue(objects > 700, objects + " objects found");
        assertTrue(right >= 0.99 * objects, right + " of " + objects + " shapes right through a 2 px blur");
    }

    @Test
    void cellsHoldOneObjectEachAndFreePlacementDoesNot() {
        ShapesWorld cells = new ShapesWorld(64, 1, 4, 5, ShapesWorld.Layout.CELLS), free = new ShapesWorld(64, 1, 4, 5, ShapesWorld.Layout.FREE);
        int crossing = 0;
        for (int i = 0; i < 300; i++) {
            Set<Integer> used = new HashSet<>();
            for (Scene.Obj o : cells.scene(i).objects()) {
                int qx = (int) (o.cx() / 32), qy = (int) (o.cy() / 32);
                assertTrue(used.add(qy * 2 + qx), "one object per quadrant: " + cells.scene(i));
                // the whole box inside its quadrant, so neighbours never touch
                assertTrue(o.cx() - o.r() > qx * 32 && o.cx() + o.r() < qx * 32 + 32 && o.cy() - o.r() > qy * 32 && o.cy() + o.r() < qy * 32 + 32,
                        "inside its quadrant: " + o);
            }
            for (Scene.Obj o : free.scene(i).objects()) if (Math.abs(o.cx() - 32) < o.r() || Math.abs(o.cy() - 32) < o.r()) crossing++;
        }
        assertTrue(crossing > 50, "free placement ignores the quadrants: " + crossing + " objects across a middle line");
        assertEquals(ShapesWorld.Layout.CELLS, ShapesWorld.demo(1).layout());
        assertEquals(ShapesWorld.Layout.FREE, ShapesWorld.Layout.parse("Free"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ShapesWorld.Layout.parse("grid"));
        assertTrue(e.getMessage().contains("'grid'") && e.getMessage().contains("cells") && e.getMessage().contains("arranged"), e.getMessage());
    }

    @Test
    void arrangedScenesShowTheirCountsArrangement() {
        // centred; side by side; two above and one below; the quadrants (in units of the side) — each object inside the
        // quarter-size box around its anchor, every anchor used once
        double[][][] anchors = {{{0.5, 0.5}}, {{0.25, 0.5}, {0.75, 0.5}}, {{0.25, 0.25}, {0.75, 0.25}, {0.5, 0.75}},
                {{0.25, 0.25}, {0.75, 0.25}, {0.25, 0.75}, {0.75, 0.75}}};
        ShapesWorld arranged = new ShapesWorld(64, 1, 4, 5, ShapesWorld.Layout.ARRANGED);
        int[] counts = new int[5];
        Set<Long> jitters = new HashSet<>();
        for (int i = 0; i < 300; i++) {
            Scene s = arranged.scene(i);
            List<Scene.Obj> objs = s.objects();
            counts[objs.size()]++;
            Set<Integer> used = new HashSet<>();
            for (Scene.Obj o : objs) {
                int k = -1;
                for (int a = 0; a < anchors[objs.size() - 1].length; a++) {
                    double ax = anchors[objs.size() - 1][a][0] * 64, ay = anchors[objs.size() - 1][a][1] * 64;
                    if (o.cx() - o.r() > ax - 16 && o.cx() + o.r() < ax + 16 && o.cy() - o.r() > ay - 16 && o.cy() + o.r() < ay + 16) k = a;
                }
                assertTrue(k >= 0 && used.add(k), "each object in its own anchor's box: " + s);
                jitters.add(Math.round(o.cx() * 8));
            }
            assertTrue(ShapesAnalyzer.score(s, ShapesAnalyzer.analyze(ShapesWorld.render(s))).all(), "read back exactly: " + s);
        }
        for (int n = 1; n <= 4; n++) assertTrue(counts[n] > 40, "every count drawn: " + java.util.Arrays.toString(counts));
        assertTrue(jitters.size() > 100, "jittered: " + jitters.size() + " distinct x positions");
        assertEquals(ShapesWorld.Layout.ARRANGED, ShapesWorld.Layout.parse("arranged"));
        new ShapesWorld(32, 1, 4, 0, ShapesWorld.Layout.ARRANGED).checkPlaceable();
    }

    @Test
    void analyzerIsExactOnFreelyPlacedRenders() {
        ShapesWorld w = new ShapesWorld(64, 1, 4, 13, ShapesWorld.Layout.FREE);
        for (int i = 0; i < 200; i++) {
            Scene s = w.scene(i);
            assertTrue(ShapesAnalyzer.score(s, ShapesAnalyzer.analyze(ShapesWorld.render(s))).all(), s.toString());
        }
    }

    @Test
    void impossibleSpecsAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> new ShapesWorld(64, 1, 9, 0));
        assertThrows(IllegalArgumentException.class, () -> new ShapesWorld(64, 3, 2, 0));
        assertThrows(IllegalArgumentException.class, () -> new ShapesWorld(64, 0, 2, 0));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new ShapesWorld(64, 2, 6, 0));
        assertTrue(e.getMessage().contains("impossible"), e.getMessage());
        // 32 px cells of a 64 px picture hold the large objects; 16 px cells of a 32 px picture too; a picture of 32 with
        // objects' radius fractions is the smallest size the world accepts
        new ShapesWorld(32, 1, 4, 0).checkPlaceable();
    }
}
