package io.mmdit4j.shapes;

import java.awt.image.BufferedImage;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Reads a shapes-world picture back into what a caption says: the background colour, and per object its shape, colour
 * and size. Steps: a 3×3 median filter per channel (noise), the background as the median colour of the border, the
 * foreground as pixels farther than {@link #THRESHOLD} from it, 4-connected components above a minimum area (specks are
 * dropped), then per component the palette colour nearest its median and the size from its extent. The shape comes from
 * the object's soft silhouette, not the thresholded one: each unfiltered pixel around the component weighs as much as it
 * lies from the background towards the object's colour (edges count in part, so a blurred corner still counts), and two
 * moments of that weight decide it: the skewness of its rows (an upright triangle −0.57, a disc or a square 0) and
 * {@code E|dx·dy| / E[(dx² + dy²)/2]} (a disc 2/π ≈ 0.64, an axis-aligned square 3/4). The square threshold sits halfway
 * between the ideal values, the triangle one at a third of the triangle's. The 3×3 median and thresholded corners it replaced rounded small squares into discs
 * (README "Training"). Exact on clean renders; tolerant of noise and of a VAE's blur (tests).
 */
public final class ShapesAnalyzer {
    private ShapesAnalyzer() {}

    /** Colour distance (RGB, 0..255) from the background above which a pixel is foreground; palette colours are ≥ 119 apart. */
    static final double THRESHOLD = 60;

    /** One object found: its attributes, centre and pixel area. */
    public record Found(Scene.Shape shape, Scene.Palette colour, Scene.Size size, double cx, double cy, int area) {}

    /** What a picture shows. */
    public record Analysis(Scene.Palette background, List<Found> objects) {
        public int count() {
            return objects.size();
        }

        /** The attribute most objects share (null without objects). */
        public Scene.Palette colour() {
            return mode(objects.stream().map(Found::colour).toList());
        }

        public Scene.Shape shape() {
            return mode(objects.stream().map(Found::shape).toList());
        }

        public Scene.Size size() {
            return mode(objects.stream().map(Found::size).toList());
        }

        /** Mean object extent as a fraction of the picture width (a continuous size measure), 0 without objects. */
        public double meanArea() {
            return objects.stream().mapToInt(Found::area).average().orElse(0);
        }

        private static <T> T mode(List<T> xs) {
            T best = null;
            long bc = 0;
            for (T x : xs) {
                long c = xs.stream().filter(x::equals).count();
                if (c > bc) {
                    bc = c;
                    best = x;
                }
            }
            return best;
        }
    }

    /** Whether a picture shows its caption: per attribute (true where the caption does not name it), all objects agreeing. */
    public record Score(boolean count, boolean colour, boolean shape, boolean size, boolean background) {
        /** Count, colour and shape all right (the caption accuracy). */
        public boolean countColourShape() {
            return count && colour && shape;
        }

        public boolean all() {
            return count && colour && shape && size && background;
        }
    }

    public static Score score(Scene truth, Analysis a) {
        Scene.Mentions m = truth.mentions();
        boolean any = a.count() > 0;
        return new Score(!m.count() || a.count() == truth.count(),
                !m.colour() || (any && a.objects().stream().allMatch(f -> f.colour() == truth.colour())),
                !m.shape() || (any && a.objects().stream().allMatch(f -> f.shape() == truth.shape())),
                !m.size() || (any && a.objects().stream().allMatch(f -> f.size() == truth.size())),
                !m.background() || a.background() == truth.background());
    }

    public static Analysis analyze(BufferedImage img) {
        int w = img.getWidth(), h = img.getHeight();
        int[][] raw = channels(img);
        int[][] ch = median3(raw, w, h);
        int[] bg = borderMedian(ch, w, h);
        Scene.Palette background = Scene.Palette.nearest(bg[0], bg[1], bg[2]);
        boolean[] fg = new boolean[w * h];
        for (int i = 0; i < w * h; i++) fg[i] = dist(ch, i, bg) > THRESHOLD;
        int[] label = new int[w * h];
        Arrays.fill(label, -1);
        List<Found> found = new ArrayList<>();
        double minArea = 0.35 * Math.pow(2 * 0.8 * Scene.Size.SMALL.radius(w), 2) * 0.5; // well below the smallest object (a small triangle)
        double midExtent = (2 * Scene.Size.SMALL.radius(w) + 2 * Scene.Size.LARGE.radius(w)) / 2;
        int[] queue = new int[w * h];
        int next = 0;
        for (int start = 0; start < w * h; start++) {
            if (!fg[start] || label[start] >= 0) continue;
            int head = 0, tail = 0;
            queue[tail++] = start;
            label[start] = next;
            int x0 = w, y0 = h, x1 = -1, y1 = -1;
            List<Integer> pixels = new ArrayList<>();
            while (head < tail) {
                int p = queue[head++];
                pixels.add(p);
                int x = p % w, y = p / w;
                x0 = Math.min(x0, x);
                x1 = Math.max(x1, x);
                y0 = Math.min(y0, y);
                y1 = Math.max(y1, y);
                int[] nb = {x > 0 ? p - 1 : -1, x < w - 1 ? p + 1 : -1, y > 0 ? p - w : -1, y < h - 1 ? p + w : -1};
                for (int q : nb) {
                    if (q >= 0 && fg[q] && label[q] < 0) {
                        label[q] = next;
                        queue[tail++] = q;
                    }
                }
            }
            next++;
            int area = pixels.size();
            if (area < minArea) continue;
            int bw = x1 - x0 + 1, bh = y1 - y0 + 1;
            double sx = 0, sy = 0;
            int[][] rgb = new int[3][area];
            for (int k = 0; k < area; k++) {
                int p = pixels.get(k);
                sx += p % w;
                sy += p / w;
                for (int c = 0; c < 3; c++) rgb[c][k] = ch[c][p];
            }
            double mx = sx / area, my = sy / area;
            int[] colourRgb = {median(rgb[0]), median(rgb[1]), median(rgb[2])};
            Scene.Shape shape = shapeOf(raw, label, next - 1, x0, y0, x1, y1, w, h, bg, colourRgb);
            double extent = Math.max(bw, bh) / (shape == Scene.Shape.SQUARE ? 0.8 : 1.0);
            Scene.Size size = extent < midExtent ? Scene.Size.SMALL : Scene.Size.LARGE;
            Scene.Palette colour = Scene.Palette.nearest(colourRgb[0], colourRgb[1], colourRgb[2]);
            found.add(new Found(shape, colour, size, mx, my, area));
        }
        return new Analysis(background, found);
    }

    /**
     * About a third of an upright triangle's row skewness (−0.566): blur pulls a triangle's towards 0 (small ones decoded
     * by the demo's VAE reach −0.25), while discs and squares stay within ±0.1, noisy or blurred.
     */
    static final double TRIANGLE_SKEW = -0.2;
    /** Halfway between a disc's {@code E|dx·dy| / E[(dx² + dy²)/2]} (2/π) and an axis-aligned square's (3/4). */
    static final double SQUARE_DIAGONAL = (2 / Math.PI + 0.75) / 2;

    /**
     * The shape of component {@code me} from its soft silhouette: pixels in its box grown by 2 (not those of other
     * components), each weighted by its unfiltered colour's position between the background (0) and the object's colour (1).
     */
    private static Scene.Shape shapeOf(int[][] raw, int[] label, int me, int x0, int y0, int x1, int y1, int w, int h, int[] bg, int[] colour) {
        double dr = colour[0] - bg[0], dg = colour[1] - bg[1], db = colour[2] - bg[2], norm = dr * dr + dg * dg + db * db;
        int xa = Math.max(0, x0 - 2), xb = Math.min(w - 1, x1 + 2), ya = Math.max(0, y0 - 2), yb = Math.min(h - 1, y1 + 2), bw = xb - xa + 1;
        double[] weight = new double[bw * (yb - ya + 1)];
        double sum = 0, sx = 0, sy = 0;
        for (int y = ya; y <= yb; y++) {
            for (int x = xa; x <= xb; x++) {
                int i = y * w + x;
                if (label[i] >= 0 && label[i] != me) continue;
                double a = ((raw[0][i] - bg[0]) * dr + (raw[1][i] - bg[1]) * dg + (raw[2][i] - bg[2]) * db) / norm;
                a = Math.max(0, Math.min(1, a));
                weight[(y - ya) * bw + x - xa] = a;
                sum += a;
                sx += a * x;
                sy += a * y;
            }
        }
        if (!(sum > 0)) return Scene.Shape.CIRCLE; // nothing of the object's colour around it: no evidence of corners or a tip
        double cx = sx / sum, cy = sy / sum, diag = 0, radial = 0, yy = 0, yyy = 0;
        for (int y = ya; y <= yb; y++) {
            for (int x = xa; x <= xb; x++) {
                double a = weight[(y - ya) * bw + x - xa], dx = x - cx, dy = y - cy;
                diag += a * Math.abs(dx * dy);
                radial += a * (dx * dx + dy * dy) / 2;
                yy += a * dy * dy;
                yyy += a * dy * dy * dy;
            }
        }
        double skew = (yyy / sum) / Math.pow(yy / sum, 1.5);
        if (skew < TRIANGLE_SKEW) return Scene.Shape.TRIANGLE;
        return diag / radial > SQUARE_DIAGONAL ? Scene.Shape.SQUARE : Scene.Shape.CIRCLE;
    }

    private static int[][] channels(BufferedImage img) {
        int w = img.getWidth(), h = img.getHeight();
        int[] px = img.getRGB(0, 0, w, h, null, 0, w);
        int[][] ch = new int[3][w * h];
        for (int i = 0; i < px.length; i++) {
            ch[0][i] = (px[i] >> 16) & 0xff;
            ch[1][i] = (px[i] >> 8) & 0xff;
            ch[2][i] = px[i] & 0xff;
        }
        return ch;
    }

    private static int[][] median3(int[][] ch, int w, int h) {
        int[][] out = new int[3][w * h];
        int[] win = new int[9];
        for (int c = 0; c < 3; c++) {
            for (int y = 0; y < h; y++) {
                for (int x = 0; x < w; x++) {
                    int n = 0;
                    for (int dy = -1; dy <= 1; dy++) {
                        for (int dx = -1; dx <= 1; dx++) {
                            int xx = Math.min(w - 1, Math.max(0, x + dx)), yy = Math.min(h - 1, Math.max(0, y + dy));
                            win[n++] = ch[c][yy * w + xx];
                        }
                    }
                    Arrays.sort(win);
                    out[c][y * w + x] = win[4];
                }
            }
        }
        return out;
    }

    private static int[] borderMedian(int[][] ch, int w, int h) {
        int[] out = new int[3];
        for (int c = 0; c < 3; c++) {
            List<Integer> v = new ArrayList<>();
            for (int x = 0; x < w; x++) {
                v.add(ch[c][x]);
                v.add(ch[c][(h - 1) * w + x]);
            }
            for (int y = 1; y < h - 1; y++) {
                v.add(ch[c][y * w]);
                v.add(ch[c][y * w + w - 1]);
            }
            out[c] = median(v.stream().mapToInt(Integer::intValue).toArray());
        }
        return out;
    }

    private static int median(int[] v) {
        int[] s = v.clone();
        Arrays.sort(s);
        return s[s.length / 2];
    }

    private static double dist(int[][] ch, int i, int[] c) {
        double dr = ch[0][i] - c[0], dg = ch[1][i] - c[1], db = ch[2][i] - c[2];
        return Math.sqrt(dr * dr + dg * dg + db * db);
    }
}
