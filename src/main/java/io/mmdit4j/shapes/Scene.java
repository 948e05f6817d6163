package io.mmdit4j.shapes;

import java.util.List;
import java.util.Locale;

/**
 * One picture of the shapes world: a background colour and 1–4 objects that share a shape, a colour and a size (what a
 * caption such as "three small red circles on a blue background" describes), at non-overlapping positions, and the
 * caption that was drawn for it with the attributes that caption mentions.
 *
 * @param objects  centres and radii in pixels of the {@code width × height} picture
 * @param mentions which attributes the caption names (count, colour, shape and size are always checked when mentioned)
 */
public record Scene(int width, int height, Palette background, Shape shape, Palette colour, Size size, List<Obj> objects, String caption,
                    Mentions mentions) {

    /** The objects' geometry: centre and "radius" (half the extent of the shape's bounding box). */
    public record Obj(double cx, double cy, double r) {}

    /** Attributes a caption names; unnamed ones are free (not scored). */
    public record Mentions(boolean count, boolean colour, boolean shape, boolean size, boolean background) {}

    /** The shapes, with their plural nouns. */
    public enum Shape {
        CIRCLE("circle", "circles"), SQUARE("square", "squares"), TRIANGLE("triangle", "triangles");

        public final String noun, plural;

        Shape(String noun, String plural) {
            this.noun = noun;
            this.plural = plural;
        }

        public static Shape parse(String s) {
            for (Shape x : values()) if (x.noun.equals(s) || x.plural.equals(s)) return x;
            throw new IllegalArgumentException("unknown shape '" + s + "'");
        }
    }

    /**
     * Sizes: the radius as a fraction of the picture width. Small was 0.085 (an 11 px disc at 64×64) until the 8×
     * VAE's reconstructions were measured: it rounded every small square into a disc (`eval-shapes --reconstruct`:
     * 0 of 18 small squares kept), which capped caption accuracy whatever the transformer learned; at 0.115 (15 px)
     * corners survive it.
     */
    public enum Size {
        SMALL("small", 0.115), LARGE("large", 0.16);

        public final String word;
        public final double radiusFraction;

        Size(String word, double radiusFraction) {
            this.word = word;
            this.radiusFraction = radiusFraction;
        }

        public double radius(int width) {
            return radiusFraction * width;
        }
    }

    /** Colours with the RGB they are drawn in; a picture never draws an object in its background colour. */
    public enum Palette {
        RED("red", 220, 40, 40), GREEN("green", 40, 170, 60), BLUE("blue", 40, 80, 220), YELLOW("yellow", 240, 210, 40),
        WHITE("white", 245, 245, 245), BLACK("black", 20, 20, 20), GREY("grey", 128, 128, 128);

        public final String word;
        public final int r, g, b;

        Palette(String word, int r, int g, int b) {
            this.word = word;
            this.r = r;
            this.g = g;
            this.b = b;
        }

        public int rgb() {
            return (r << 16) | (g << 8) | b;
        }

        /** The nearest palette colour to an RGB (Euclidean). */
        public static Palette nearest(double r, double g, double b) {
            Palette best = null;
            double bd = Double.MAX_VALUE;
            for (Palette p : values()) {
                double d = (p.r - r) * (p.r - r) + (p.g - g) * (p.g - g) + (p.b - b) * (p.b - b);
                if (d < bd) {
                    bd = d;
                    best = p;
                }
            }
            return best;
        }

        public static Palette parse(String s) {
            for (Palette x : values()) if (x.word.equals(s) || (x == GREY && s.equals("gray"))) return x;
            throw new IllegalArgumentException("unknown colour '" + s + "'");
        }
    }

    public int count() {
        return objects.size();
    }

    static final String[] NUMBERS = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"};

    /** "three", or "a"/"an" for one (with the next word). */
    static String countWord(int n, String next) {
        if (n == 1) return "aeiou".indexOf(next.charAt(0)) >= 0 ? "an" : "a";
        return n < NUMBERS.length ? NUMBERS[n] : String.valueOf(n);
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "%s (%d x %s %s %s on %s)", caption, count(), size.word, colour.word, shape.noun, background.word);
    }
}
