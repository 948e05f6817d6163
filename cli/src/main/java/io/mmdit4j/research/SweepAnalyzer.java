package io.mmdit4j.research;

import io.mmdit4j.shapes.ShapesAnalyzer;

import java.awt.image.BufferedImage;
import java.math.BigDecimal;
import java.math.RoundingMode;
import java.util.Arrays;
import java.util.List;

/**
 * What a sweep reads back from every image it makes, as extra results columns after {@link SweepRunner#RESULT_COLUMNS}:
 * {@code none} (no extra columns: the files are as without the option) or {@code shapes} (the {@link ShapesAnalyzer} of
 * the shapes world: objects found, their most common colour, shape and size, the background and the mean object area).
 */
public enum SweepAnalyzer {
    NONE("none", List.of()),
    SHAPES("shapes", List.of("found", "colour", "shape", "size", "background", "mean_area"));

    /** The spec's and the flag's value. */
    public final String word;
    /** The columns this analyzer adds, in order. */
    public final List<String> columns;

    SweepAnalyzer(String word, List<String> columns) {
        this.word = word;
        this.columns = columns;
    }

    /** {@code none} or {@code shapes}; null is {@code none} (the option absent). */
    public static SweepAnalyzer parse(String s) {
        if (s == null) return NONE;
        for (SweepAnalyzer a : values()) if (a.word.equals(s)) return a;
        throw new IllegalArgumentException("sweep: analyze must be one of " + Arrays.stream(values()).map(a -> a.word).toList() + ", got '" + s + "'");
    }

    /**
     * The values of {@link #columns} for one image: numbers as numbers (the JSONL keeps them numeric), words in lower case,
     * empty text where there is nothing to name (no object found).
     */
    public List<Object> fields(BufferedImage img) {
        if (this == NONE) return List.of();
        ShapesAnalyzer.Analysis a = ShapesAnalyzer.analyze(img);
        boolean any = a.count() > 0;
        return List.of(a.count(), any ? a.colour().word : "", any ? a.shape().noun : "", any ? a.size().word : "",
                a.background().word, BigDecimal.valueOf(a.meanArea()).setScale(1, RoundingMode.HALF_UP)); // one decimal, never an exponent
    }

    @Override
    public String toString() {
        return word;
    }
}
