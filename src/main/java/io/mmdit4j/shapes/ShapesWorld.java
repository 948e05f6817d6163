package io.mmdit4j.shapes;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.geom.Ellipse2D;
import java.awt.geom.Path2D;
import java.awt.geom.Rectangle2D;
import java.awt.image.BufferedImage;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * The shapes world: seeded scenes ({@link Scene}) drawn with Java2D (antialiased) and captioned from varied templates.
 * Scene {@code i} of a world depends only on the world's seed and {@code i}, so a dataset is reproducible and can be
 * read from any index (a resumed training sees the same pictures).
 *
 * @param size        picture width and height in pixels (≥ 32)
 * @param minObjects  fewest objects in a picture (≥ 1)
 * @param maxObjects  most objects (≤ 4 and placeable without overlap at the large size: checked)
 * @param seed        the world's seed
 * @param layout      where objects may sit: {@link Layout#CELLS} (the demo's), {@link Layout#ARRANGED} or {@link Layout#FREE}
 */
public record ShapesWorld(int size, int minObjects, int maxObjects, long seed, Layout layout) {
    /**
     * Where a scene's objects may sit. {@code FREE}: anywhere, apart by a gap. {@code CELLS}: one object per quadrant
     * of the picture, jittered inside it. The demo uses cells because its transformer sees a 64×64 picture as 4×4 image
     * tokens: trained on free placement on 2 cores it drew neighbouring objects as merged blobs (README "Training"),
     * while a quadrant is 2×2 tokens that either hold one object or none. {@code ARRANGED}: one arrangement per count, each
     * object jittered inside its own quarter-size box as in cells — one object in the centre, two side by side, three in
     * a triangle (two above, one below), four in the quadrants. Trained on cells, the demo decided each quadrant almost
     * independently (its counts spread like a binomial), so a count the arrangement shows is easier to draw.
     */
    public enum Layout {
        FREE, CELLS, ARRANGED;

        public static Layout parse(String s) {
            for (Layout l : values()) if (l.name().equalsIgnoreCase(s)) return l;
            throw new IllegalArgumentException("shapes world: unknown layout '" + s + "' (expected free, cells or arranged)");
        }

        /** How a training run's data description (and so its trainer state) names the layout. */
        public String placement() {
            return switch (this) {
                case FREE -> "freely";
                case CELLS -> "in cells";
                case ARRANGED -> "arranged by count";
            };
        }
    }
    public static final int MAX_OBJECTS = 4;
    private static final int PLACEMENT_TRIES = 2000;

    /** The demo's layout, {@link Layout#CELLS}. */
    public ShapesWorld(int size, int minObjects, int maxObjects, long seed) {
        this(size, minObjects, maxObjects, seed, Layout.CELLS);
    }

    public ShapesWorld {
        if (layout == null) throw new IllegalArgumentException("shapes world: no layout");
        if (size < 32 || size > 1024) throw new IllegalArgumentException("shapes world: picture size " + size + " must be 32..1024");
        if (minObjects < 1 || maxObjects < minObjects) {
            throw new IllegalArgumentException("shapes world: object counts " + minObjects + ".." + maxObjects + " are impossible (need 1 <= min <= max)");
        }
        if (maxObjects > MAX_OBJECTS) {
            throw new IllegalArgumentException("shapes world: " + maxObjects + " objects per picture is impossible: at most " + MAX_OBJECTS
                    + " fit without overlap (and the captions count to four)");
        }
    }

    /** The demo's world: 64×64 pictures with 1–4 objects. */
    public static ShapesWorld demo(long seed) {
        return new ShapesWorld(64, 1, 4, seed);
    }

    /** Scene {@code index} of this world. */
    public Scene scene(long index) {
        Random rnd = new Random(seed * 0x9E3779B97F4A7C15L + index * 0xBF58476D1CE4E5B9L + 0x94D049BB133111EBL);
        Scene.Palette[] colours = Scene.Palette.values();
        Scene.Palette background = colours[rnd.nextInt(colours.length)];
        Scene.Palette colour;
        do colour = colours[rnd.nextInt(colours.length)]; while (colour == background);
        Scene.Shape shape = Scene.Shape.values()[rnd.nextInt(Scene.Shape.values().length)];
        Scene.Size sz = Scene.Size.values()[rnd.nextInt(Scene.Size.values().length)];
        int n = minObjects + rnd.nextInt(maxObjects - minObjects + 1);
        List<Scene.Obj> objs = place(n, sz.radius(size), rnd);
        Template t = TEMPLATES[rnd.nextInt(TEMPLATES.length)];
        return new Scene(size, size, background, shape, colour, sz, objs, t.caption(n, sz, colour, shape, background), t.mentions());
    }

    /** A scene with given attributes (evaluation prompts), placed from {@code placementSeed}. */
    public Scene scene(int n, Scene.Size sz, Scene.Palette colour, Scene.Shape shape, Scene.Palette background, long placementSeed) {
        if (n < 1 || n > MAX_OBJECTS) throw new IllegalArgumentException("object count " + n + " must be 1.." + MAX_OBJECTS);
        if (colour == background) throw new IllegalArgumentException("objects drawn in the background colour are invisible");
        List<Scene.Obj> objs = place(n, sz.radius(size), new Random(placementSeed));
        Template t = TEMPLATES[0];
        return new Scene(size, size, background, shape, colour, sz, objs, t.caption(n, sz, colour, shape, background), t.mentions());
    }

    /** Non-overlapping centres by the layout; an error when they do not fit. */
    private List<Scene.Obj> place(int n, double r, Random rnd) {
        return switch (layout) {
            case CELLS -> placeInCells(n, r, rnd);
            case ARRANGED -> placeArranged(n, r, rnd);
            case FREE -> placeFree(n, r, rnd);
        };
    }

    /** Where {@link Layout#ARRANGED} puts the objects of each count, in units of the picture's side. */
    private static final double[][][] ARRANGEMENTS = {
            {{0.5, 0.5}},
            {{0.25, 0.5}, {0.75, 0.5}},
            {{0.25, 0.25}, {0.75, 0.25}, {0.5, 0.75}},
            {{0.25, 0.25}, {0.75, 0.25}, {0.25, 0.75}, {0.75, 0.75}}};

    /**
     * The count's arrangement, each object jittered inside the quarter-size box around its anchor; the boxes of one
     * arrangement do not overlap, so neither do the objects.
     */
    private List<Scene.Obj> placeArranged(int n, double r, Random rnd) {
        double jitter = cellJitter(r);
        List<Scene.Obj> out = new ArrayList<>();
        for (double[] a : ARRANGEMENTS[n - 1]) {
            out.add(new Scene.Obj(a[0] * size + (2 * rnd.nextDouble() - 1) * jitter, a[1] * size + (2 * rnd.nextDouble() - 1) * jitter, r));
        }
        return out;
    }

    /** How far an object of radius {@code r} may move from the centre of a quadrant-size box and stay inside it; an error when it does not fit. */
    private double cellJitter(double r) {
        double cell = size / 2.0, margin = 1.5, jitter = cell / 2 - r - margin;
        if (jitter < 0) {
            throw new IllegalArgumentException("shapes world: objects of radius " + String.format(java.util.Locale.ROOT, "%.1f", r) + " px do not fit a "
                    + String.format(java.util.Locale.ROOT, "%.0f", cell) + " px cell of " + size + "x" + size + " pixels (an impossible dataset spec)");
        }
        return jitter;
    }

    /** {@code n} distinct quadrants in random order, each object at its quadrant's centre plus a jitter that keeps it inside. */
    private List<Scene.Obj> placeInCells(int n, double r, Random rnd) {
        double cell = size / 2.0, jitter = cellJitter(r);
        List<Integer> cells = new ArrayList<>(List.of(0, 1, 2, 3));
        java.util.Collections.shuffle(cells, rnd);
        List<Scene.Obj> out = new ArrayList<>();
        for (int k = 0; k < n; k++) {
            int c = cells.get(k);
            double cx = (c % 2 + 0.5) * cell + (2 * rnd.nextDouble() - 1) * jitter;
            double cy = (c / 2 + 0.5) * cell + (2 * rnd.nextDouble() - 1) * jitter;
            out.add(new Scene.Obj(cx, cy, r));
        }
        return out;
    }

    /** Non-overlapping centres anywhere (gap ≥ 2 px plus a margin to the border), by rejection. */
    private List<Scene.Obj> placeFree(int n, double r, Random rnd) {
        double gap = Math.max(2.0, size / 24.0), margin = 1.5;
        for (int attempt = 0; attempt < 50; attempt++) {
            List<Scene.Obj> out = new ArrayList<>();
            for (int tries = 0; out.size() < n && tries < PLACEMENT_TRIES; tries++) {
                double cx = margin + r + rnd.nextDouble() * (size - 2 * (r + margin));
                double cy = margin + r + rnd.nextDouble() * (size - 2 * (r + margin));
                boolean free = true;
                for (Scene.Obj o : out) {
                    // bounding boxes apart by the gap: squares and triangles fill theirs
                    if (Math.abs(o.cx() - cx) < 2 * r + gap && Math.abs(o.cy() - cy) < 2 * r + gap) {
                        free = false;
                        break;
                    }
                }
                if (free) out.add(new Scene.Obj(cx, cy, r));
            }
            if (out.size() == n) return out;
        }
        throw new IllegalArgumentException("shapes world: cannot place " + n + " objects of radius " + String.format(java.util.Locale.ROOT, "%.1f", r)
                + " px without overlap in " + size + "x" + size + " pixels (an impossible dataset spec)");
    }

    /** Checks that every count of this world can be placed at both sizes (a clear error up front instead of mid-training). */
    public void checkPlaceable() {
        for (Scene.Size s : Scene.Size.values()) place(maxObjects, s.radius(size), new Random(seed));
    }

    /** Draws {@code s} antialiased into a new RGB picture. */
    public static BufferedImage render(Scene s) {
        BufferedImage img = new BufferedImage(s.width(), s.height(), BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        try {
            g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
            g.setRenderingHint(RenderingHints.KEY_STROKE_CONTROL, RenderingHints.VALUE_STROKE_PURE);
            g.setRenderingHint(RenderingHints.KEY_RENDERING, RenderingHints.VALUE_RENDER_QUALITY);
            g.setColor(new Color(s.background().rgb()));
            g.fill(new Rectangle2D.Double(0, 0, s.width(), s.height()));
            g.setColor(new Color(s.colour().rgb()));
            g.setStroke(new BasicStroke(0f));
            for (Scene.Obj o : s.objects()) g.fill(outline(s.shape(), o));
        } finally {
            g.dispose();
        }
        return img;
    }

    /** The outline of one object: a disc, an axis-aligned square, an upright isosceles triangle, each in the box of side 2r. */
    static java.awt.Shape outline(Scene.Shape shape, Scene.Obj o) {
        double x = o.cx() - o.r(), y = o.cy() - o.r(), d = 2 * o.r();
        return switch (shape) {
            case CIRCLE -> new Ellipse2D.Double(x, y, d, d);
            case SQUARE -> new Rectangle2D.Double(x + 0.1 * d, y + 0.1 * d, 0.8 * d, 0.8 * d); // same area class as the disc
            case TRIANGLE -> {
                Path2D.Double p = new Path2D.Double();
                p.moveTo(o.cx(), y);
                p.lineTo(x + d, y + d);
                p.lineTo(x, y + d);
                p.closePath();
                yield p;
            }
        };
    }

    /** A caption template and the attributes it names. */
    record Template(String pattern, Scene.Mentions mentions) {
        String caption(int n, Scene.Size size, Scene.Palette colour, Scene.Shape shape, Scene.Palette background) {
            String noun = n == 1 ? shape.noun : shape.plural;
            String out = pattern.replace("{size}", size.word).replace("{colour}", colour.word).replace("{shape}", noun)
                    .replace("{bg}", background.word);
            int at = out.indexOf("{count}");
            if (at >= 0) {
                String next = out.substring(at + "{count}".length()).strip();
                out = out.replace("{count}", Scene.countWord(n, next.isEmpty() ? "x" : next));
            }
            return out;
        }
    }

    private static final Scene.Mentions ALL = new Scene.Mentions(true, true, true, true, true);
    private static final Scene.Mentions NO_BG = new Scene.Mentions(true, true, true, true, false);
    private static final Scene.Mentions NO_SIZE = new Scene.Mentions(true, true, true, false, true);

    /** Varied phrasings; the first is the evaluation prompts' (every attribute named). */
    static final Template[] TEMPLATES = {
            new Template("{count} {size} {colour} {shape} on a {bg} background", ALL),
            new Template("{count} {size} {colour} {shape}", NO_BG),
            new Template("{count} {colour} {shape} on a {bg} background", NO_SIZE),
            new Template("a {bg} background with {count} {size} {colour} {shape}", ALL),
            new Template("{count} {size} {colour} {shape} against {bg}", ALL),
            new Template("a picture of {count} {size} {colour} {shape} on {bg}", ALL),
            new Template("{count} {colour} {shape}, {size}, on a {bg} background", ALL),
    };
}
