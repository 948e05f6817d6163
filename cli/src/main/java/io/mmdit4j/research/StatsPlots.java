package io.mmdit4j.research;

import io.mmdit4j.image.PngImages;

import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.function.ToDoubleFunction;

/**
 * Line plots of the modulation statistics of one cell: six panels over the block index (x axis), one colour per denoising
 * step shown (the first, middle and last by default): ||temb|| (dashed) and ||temb_guided||; ||w·delta||; the angle
 * between temb and the offset; and the norms of the gate, scale and shift vectors (solid: the image stream of double
 * blocks, then the single blocks; dashed: the text stream of double blocks).
 */
public final class StatsPlots {
    private static final int PANEL_W = 440, PANEL_H = 300;

    private StatsPlots() {}

    /** Rows of stats.csv grouped by cell, in file order. */
    public static Map<String, List<ModulationStats.Row>> read(Path statsCsv) throws IOException {
        if (!Files.isRegularFile(statsCsv)) throw new IllegalArgumentException(statsCsv + ": no such file (a sweep's stats.csv)");
        List<List<String>> all = Csv.parse(Files.readString(statsCsv));
        if (all.isEmpty() || !all.get(0).equals(ModulationStats.COLUMNS)) {
            throw new IllegalArgumentException(statsCsv + ": not a modulation-statistics CSV (expected the header " + ModulationStats.COLUMNS + ")");
        }
        Map<String, List<ModulationStats.Row>> byCell = new LinkedHashMap<>();
        for (List<String> f : all.subList(1, all.size())) {
            if (f.size() != ModulationStats.COLUMNS.size()) continue; // a line cut short by an interrupted run
            ModulationStats.Row r = ModulationStats.Row.fromCsv(all.get(0), f);
            byCell.computeIfAbsent(r.cell(), k -> new ArrayList<>()).add(r);
        }
        return byCell;
    }

    /** The first, middle and last step present (fewer when there are fewer steps). */
    public static List<Integer> defaultSteps(List<ModulationStats.Row> rows) {
        TreeSet<Integer> steps = new TreeSet<>();
        rows.forEach(r -> steps.add(r.step()));
        List<Integer> all = new ArrayList<>(steps);
        TreeSet<Integer> pick = new TreeSet<>();
        if (!all.isEmpty()) {
            pick.add(all.get(0));
            pick.add(all.get(all.size() / 2));
            pick.add(all.get(all.size() - 1));
        }
        return new ArrayList<>(pick);
    }

    public static BufferedImage render(String title, List<ModulationStats.Row> rows, List<Integer> steps) {
        Headless.ensure();
        int header = 26;
        BufferedImage img = new BufferedImage(3 * PANEL_W, header + 2 * PANEL_H, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, img.getWidth(), img.getHeight());
        g.setColor(Color.BLACK);
        g.setFont(new java.awt.Font(java.awt.Font.SANS_SERIF, java.awt.Font.BOLD, 13));
        g.drawString(ContactSheet.fit(title, g.getFontMetrics(), img.getWidth() - 10), 6, 18);

        List<LinePlot.Series> norms = new ArrayList<>(), offset = new ArrayList<>(), angle = new ArrayList<>(), gate = new ArrayList<>(),
                scale = new ArrayList<>(), shift = new ArrayList<>();
        for (int k = 0; k < steps.size(); k++) {
            int step = steps.get(k);
            Color c = LinePlot.PALETTE[k % LinePlot.PALETTE.length];
            List<ModulationStats.Row> at = rows.stream().filter(r -> r.step() == step).sorted((a, b) -> Integer.compare(a.block(), b.block())).toList();
            if (at.isEmpty()) continue;
            double[] x = at.stream().mapToDouble(ModulationStats.Row::block).toArray();
            String s = "step " + step;
            norms.add(new LinePlot.Series(s + " guided", x, col(at, ModulationStats.Row::guidedNorm), c, false));
            norms.add(new LinePlot.Series(s + " temb", x, col(at, ModulationStats.Row::tembNorm), c, true));
            offset.add(new LinePlot.Series(s, x, col(at, ModulationStats.Row::offsetNorm), c, false));
            angle.add(new LinePlot.Series(s, x, col(at, ModulationStats.Row::angleDeg), c, false));
            gate.add(new LinePlot.Series(s + " img/single", x, mod(at, "img_gate_msa", "single_gate"), c, false));
            gate.add(new LinePlot.Series(s + " txt", x, mod(at, "txt_gate_msa", null), c, true));
            scale.add(new LinePlot.Series(s + " img/single", x, mod(at, "img_scale_msa", "single_scale"), c, false));
            scale.add(new LinePlot.Series(s + " txt", x, mod(at, "txt_scale_msa", null), c, true));
            shift.add(new LinePlot.Series(s + " img/single", x, mod(at, "img_shift_msa", "single_shift"), c, false));
            shift.add(new LinePlot.Series(s + " txt", x, mod(at, "txt_shift_msa", null), c, true));
        }
        LinePlot.draw(g, 0, header, PANEL_W, PANEL_H, "||temb_guided|| (solid) and ||temb|| (dashed)", "block", "L2 norm", norms);
        LinePlot.draw(g, PANEL_W, header, PANEL_W, PANEL_H, "||w·f(l)·delta|| (guidance offset)", "block", "L2 norm", offset);
        LinePlot.draw(g, 2 * PANEL_W, header, PANEL_W, PANEL_H, "angle between temb and the offset", "block", "degrees", angle);
        LinePlot.draw(g, 0, header + PANEL_H, PANEL_W, PANEL_H, "gate (msa; single: gate)", "block", "L2 norm", gate);
        LinePlot.draw(g, PANEL_W, header + PANEL_H, PANEL_W, PANEL_H, "scale (msa; single: scale)", "block", "L2 norm", scale);
        LinePlot.draw(g, 2 * PANEL_W, header + PANEL_H, PANEL_W, PANEL_H, "shift (msa; single: shift)", "block", "L2 norm", shift);
        g.dispose();
        return img;
    }

    private static double[] col(List<ModulationStats.Row> rows, ToDoubleFunction<ModulationStats.Row> f) {
        return rows.stream().mapToDouble(f).toArray();
    }

    private static double[] mod(List<ModulationStats.Row> rows, String doubleKey, String singleKey) {
        double[] out = new double[rows.size()];
        for (int i = 0; i < out.length; i++) {
            Map<String, Double> m = rows.get(i).modulation();
            Double v = m.get(doubleKey);
            if (v == null && singleKey != null) v = m.get(singleKey);
            out[i] = v == null ? Double.NaN : v;
        }
        return out;
    }

    /**
     * One PNG per cell of {@code statsCsv} ({@code <cell>.png} in {@code outDir}); titles from results.csv beside it when
     * present. {@code cells}/{@code steps} limit what is drawn (empty: all cells, default steps).
     */
    public static List<Path> plotAll(Path statsCsv, Path outDir, List<String> cells, List<Integer> steps) throws IOException {
        Map<String, List<ModulationStats.Row>> byCell = read(statsCsv);
        Map<String, String> titles = new LinkedHashMap<>();
        Path results = statsCsv.resolveSibling("results.csv");
        for (List<String> r : SweepRunner.readCsvRows(results)) {
            if (r.size() < SweepRunner.RESULT_COLUMNS.size()) continue; // a cut-short row; an analyzer's columns come after these
            String dir = r.get(4).isEmpty() ? "unguided (reference)" : r.get(4) + " w=" + r.get(7) + " layers " + r.get(8) + " steps " + r.get(9)
                    + (r.get(10).equals("none") ? "" : " norm " + r.get(10));
            titles.put(r.get(0), "cell " + r.get(0) + ": \"" + r.get(2) + "\" seed " + r.get(3) + ", " + dir);
        }
        for (String c : cells) if (!byCell.containsKey(c)) throw new IllegalArgumentException(statsCsv + ": no statistics for cell " + c);
        List<Path> files = new ArrayList<>();
        for (Map.Entry<String, List<ModulationStats.Row>> e : byCell.entrySet()) {
            if (!cells.isEmpty() && !cells.contains(e.getKey())) continue;
            List<Integer> st = steps.isEmpty() ? defaultSteps(e.getValue()) : steps;
            Path f = outDir.resolve(e.getKey() + ".png");
            String title = titles.getOrDefault(e.getKey(), "cell " + e.getKey());
            PngImages.write(f, render(title, e.getValue(), st), Map.of("Title", title));
            files.add(f);
        }
        return files;
    }
}
