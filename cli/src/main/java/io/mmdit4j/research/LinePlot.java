package io.mmdit4j.research;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.FontMetrics;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.Stroke;
import java.awt.geom.Path2D;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * A line chart drawn with java.awt into a rectangle of a larger image: title, axes with "nice" ticks (1, 2, 5 × 10^k),
 * axis labels, one polyline per series (NaN values break the line, single points get a marker) and a legend.
 */
public final class LinePlot {
    /** One curve; {@code dashed} draws it dashed (e.g. a reference quantity in the same colour). */
    public record Series(String name, double[] x, double[] y, Color color, boolean dashed) {}

    public static final Color[] PALETTE = {new Color(0x1f77b4), new Color(0xd62728), new Color(0x2ca02c), new Color(0xff7f0e),
            new Color(0x9467bd), new Color(0x8c564b), new Color(0xe377c2), new Color(0x17becf)};

    private LinePlot() {}

    public static void draw(Graphics2D g, int left, int top, int width, int height, String title, String xLabel, String yLabel,
                            List<Series> series) {
        Headless.ensure();
        g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
        g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
        Font font = new Font(Font.SANS_SERIF, Font.PLAIN, 11);
        g.setFont(font);
        FontMetrics fm = g.getFontMetrics();
        double xmin = Double.POSITIVE_INFINITY, xmax = Double.NEGATIVE_INFINITY, ymin = Double.POSITIVE_INFINITY, ymax = Double.NEGATIVE_INFINITY;
        for (Series s : series) {
            for (int i = 0; i < s.x().length; i++) {
                if (!Double.isFinite(s.y()[i]) || !Double.isFinite(s.x()[i])) continue;
                xmin = Math.min(xmin, s.x()[i]);
                xmax = Math.max(xmax, s.x()[i]);
                ymin = Math.min(ymin, s.y()[i]);
                ymax = Math.max(ymax, s.y()[i]);
            }
        }
        boolean empty = xmin > xmax;
        if (empty) { xmin = 0; xmax = 1; ymin = 0; ymax = 1; }
        if (xmax == xmin) { xmin -= 0.5; xmax += 0.5; }
        if (ymax == ymin) { double d = ymax == 0 ? 1 : Math.abs(ymax) * 0.1; ymin -= d; ymax += d; }
        double yStep = niceStep(ymax - ymin), xStep = Math.max(1, niceStep(xmax - xmin));
        ymin = Math.floor(ymin / yStep) * yStep;
        ymax = Math.ceil(ymax / yStep) * yStep;

        int yTickW = 0;
        for (double v = ymin; v <= ymax + yStep / 2; v += yStep) yTickW = Math.max(yTickW, fm.stringWidth(tick(v, yStep)));
        int line = fm.getHeight();
        int px = left + line + yTickW + 10, py = top + line + 6;
        int pw = width - (px - left) - 10, ph = height - (py - top) - 2 * line - 8;

        g.setColor(Color.WHITE);
        g.fillRect(left, top, width, height);
        g.setColor(Color.BLACK);
        g.setFont(font.deriveFont(Font.BOLD, 12f));
        g.drawString(ChartText.fit(title, g.getFontMetrics(), width - 8), left + 4, top + line);
        g.setFont(font);
        // grid and ticks
        for (double v = ymin; v <= ymax + yStep / 2; v += yStep) {
            int y = py + ph - (int) Math.round((v - ymin) / (ymax - ymin) * ph);
            g.setColor(new Color(0xe8e8e8));
            g.drawLine(px, y, px + pw, y);
            g.setColor(Color.BLACK);
            String t = tick(v, yStep);
            g.drawString(t, px - 4 - fm.stringWidth(t), y + fm.getAscent() / 2 - 1);
        }
        for (double v = Math.ceil(xmin / xStep) * xStep; v <= xmax + 1e-9; v += xStep) {
            int x = px + (int) Math.round((v - xmin) / (xmax - xmin) * pw);
            g.setColor(new Color(0xe8e8e8));
            g.drawLine(x, py, x, py + ph);
            g.setColor(Color.BLACK);
            g.drawLine(x, py + ph, x, py + ph + 3);
            String t = tick(v, xStep);
            g.drawString(t, x - fm.stringWidth(t) / 2, py + ph + 4 + fm.getAscent());
        }
        g.setColor(Color.BLACK);
        g.drawRect(px, py, pw, ph);
        g.drawString(xLabel, px + (pw - fm.stringWidth(xLabel)) / 2, py + ph + 6 + line + fm.getAscent() - 2);
        if (empty) {
            String none = "no values (e.g. no guidance offset)";
            g.setColor(Color.GRAY);
            g.drawString(none, px + (pw - fm.stringWidth(none)) / 2, py + ph / 2);
            g.setColor(Color.BLACK);
        }
        Graphics2D rot = (Graphics2D) g.create();
        rot.rotate(-Math.PI / 2);
        rot.drawString(yLabel, -(py + (ph + fm.stringWidth(yLabel)) / 2), left + fm.getAscent());
        rot.dispose();

        // curves
        Stroke solid = new BasicStroke(1.6f), dashed = new BasicStroke(1.6f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10f, new float[] {5f, 4f}, 0f);
        for (Series s : series) {
            g.setColor(s.color());
            g.setStroke(s.dashed() ? dashed : solid);
            Path2D.Double path = new Path2D.Double();
            boolean open = false;
            for (int i = 0; i < s.x().length; i++) {
                if (!Double.isFinite(s.y()[i])) { open = false; continue; }
                double x = px + (s.x()[i] - xmin) / (xmax - xmin) * pw, y = py + ph - (s.y()[i] - ymin) / (ymax - ymin) * ph;
                if (open) path.lineTo(x, y);
                else path.moveTo(x, y);
                open = true;
                g.fillOval((int) Math.round(x) - 2, (int) Math.round(y) - 2, 4, 4);
            }
            g.draw(path);
        }
        g.setStroke(new BasicStroke(1f));
        // legend, top right inside the plot
        List<Series> named = new ArrayList<>();
        for (Series s : series) if (s.name() != null && !s.name().isEmpty()) named.add(s);
        if (!named.isEmpty()) {
            int lw = 0;
            for (Series s : named) lw = Math.max(lw, fm.stringWidth(s.name()));
            int bw = lw + 34, bh = named.size() * line + 6;
            // the corner whose box covers the fewest curve points (ties: top right, top left, bottom right, bottom left)
            int[][] corners = {{px + pw - bw - 4, py + 4}, {px + 4, py + 4}, {px + pw - bw - 4, py + ph - bh - 4}, {px + 4, py + ph - bh - 4}};
            int bx = corners[0][0], by = corners[0][1], best = Integer.MAX_VALUE;
            for (int[] c : corners) {
                int covered = 0;
                for (Series s : series) {
                    for (int i = 0; i < s.x().length; i++) {
                        if (!Double.isFinite(s.y()[i])) continue;
                        double x = px + (s.x()[i] - xmin) / (xmax - xmin) * pw, y = py + ph - (s.y()[i] - ymin) / (ymax - ymin) * ph;
                        if (x >= c[0] - 4 && x <= c[0] + bw + 4 && y >= c[1] - 4 && y <= c[1] + bh + 4) covered++;
                        if (i > 0 && Double.isFinite(s.y()[i - 1])) { // the segment's midpoint too
                            double x2 = px + (s.x()[i - 1] - xmin) / (xmax - xmin) * pw, y2 = py + ph - (s.y()[i - 1] - ymin) / (ymax - ymin) * ph;
                            double mx = (x + x2) / 2, my = (y + y2) / 2;
                            if (mx >= c[0] && mx <= c[0] + bw && my >= c[1] && my <= c[1] + bh) covered++;
                        }
                    }
                }
                if (covered < best) { best = covered; bx = c[0]; by = c[1]; }
            }
            g.setColor(new Color(255, 255, 255, 225));
            g.fillRect(bx, by, bw, bh);
            g.setColor(Color.GRAY);
            g.drawRect(bx, by, bw, bh);
            for (int i = 0; i < named.size(); i++) {
                Series s = named.get(i);
                int y = by + 3 + i * line + line / 2;
                g.setColor(s.color());
                g.setStroke(s.dashed() ? dashed : solid);
                g.drawLine(bx + 4, y, bx + 24, y);
                g.setStroke(new BasicStroke(1f));
                g.setColor(Color.BLACK);
                g.drawString(s.name(), bx + 28, y + fm.getAscent() / 2 - 1);
            }
        }
    }

    static double niceStep(double range) {
        if (!(range > 0)) return 1;
        double raw = range / 5, mag = Math.pow(10, Math.floor(Math.log10(raw))), f = raw / mag;
        return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
    }

    private static String tick(double v, double step) {
        if (Math.abs(v) < step * 1e-6) v = 0;
        int decimals = Math.max(0, (int) -Math.floor(Math.log10(step)));
        if (Math.abs(v) >= 1e5 || (v != 0 && Math.abs(v) < 1e-4)) return String.format(Locale.ROOT, "%.1e", v);
        return String.format(Locale.ROOT, "%." + decimals + "f", v);
    }

    /** Text fitting shared with the contact sheets. */
    static final class ChartText {
        private ChartText() {}

        static String fit(String s, FontMetrics fm, int width) {
            return ContactSheet.fit(s, fm, width);
        }
    }
}
