package io.mmdit4j.research;

import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.lines.SeriesLines;
import org.knowm.xchart.style.markers.SeriesMarkers;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.util.Arrays;
import java.util.List;

/**
 * A line chart drawn with XChart into a rectangle of a larger image (the panels of {@link StatsPlots}): title, axes with
 * XChart's ticks, axis labels, one polyline per series with a small marker at each point (NaN values break the line),
 * solid or dashed, and a legend inside the top right corner.
 */
public final class LinePlot {
    /** One curve; {@code dashed} draws it dashed (e.g. a reference quantity in the same colour). */
    public record Series(String name, double[] x, double[] y, Color color, boolean dashed) {}

    public static final Color[] PALETTE = {new Color(0x1f77b4), new Color(0xd62728), new Color(0x2ca02c), new Color(0xff7f0e),
            new Color(0x9467bd), new Color(0x8c564b), new Color(0xe377c2), new Color(0x17becf)};

    private static final BasicStroke DASHED = new BasicStroke(1.6f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10f, new float[] {5f, 4f}, 0f);

    private LinePlot() {}

    public static void draw(Graphics2D g, int left, int top, int width, int height, String title, String xLabel, String yLabel,
                            List<Series> series) {
        Headless.ensure();
        XYChart chart = new XYChartBuilder().width(width).height(height).title(title).xAxisTitle(xLabel).yAxisTitle(yLabel).build();
        var st = chart.getStyler();
        Font plain = new Font(Font.SANS_SERIF, Font.PLAIN, 11);
        st.setChartBackgroundColor(Color.WHITE);
        st.setPlotBackgroundColor(Color.WHITE);
        st.setPlotBorderColor(Color.BLACK);
        st.setPlotGridLinesColor(new Color(0xe8e8e8));
        st.setChartTitleBoxVisible(false);
        st.setChartFontColor(Color.BLACK);
        st.setChartTitleFont(new Font(Font.SANS_SERIF, Font.BOLD, 12));
        st.setLegendFont(plain);
        st.setAxisTitleFont(plain);
        st.setAxisTickLabelsFont(plain);
        st.setLegendPosition(Styler.LegendPosition.InsideNE);
        st.setLegendBackgroundColor(new Color(255, 255, 255, 225));
        st.setLegendBorderColor(Color.GRAY);
        st.setMarkerSize(4);
        st.setChartPadding(6);
        st.setDefaultSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Line);
        boolean any = false;
        for (int k = 0; k < series.size(); k++) {
            Series s = series.get(k);
            boolean finite = Arrays.stream(s.y()).anyMatch(Double::isFinite);
            if (!finite) continue;
            any = true;
            String name = s.name() == null || s.name().isEmpty() ? " ".repeat(k + 1) : s.name(); // XChart needs unique names
            XYSeries xs = chart.addSeries(name, s.x(), s.y());
            xs.setLineColor(s.color());
            xs.setMarkerColor(s.color());
            xs.setMarker(SeriesMarkers.CIRCLE);
            xs.setLineStyle(s.dashed() ? DASHED : SeriesLines.SOLID);
            xs.setShowInLegend(s.name() != null && !s.name().isEmpty());
        }
        if (!any) { // an empty panel says so instead of an axis without a scale
            XYSeries none = chart.addSeries("no values (e.g. no guidance offset)", new double[] {0, 1}, new double[] {0, 0});
            none.setLineColor(Color.LIGHT_GRAY);
            none.setMarker(SeriesMarkers.NONE);
        }
        st.setLegendVisible(true);
        if (any) {
            // "nice" y bounds (1, 2, 5 × 10^k steps): XChart's own bounds are the data's, which gives ticks like 2.935370061093298
            double lo = Double.POSITIVE_INFINITY, hi = Double.NEGATIVE_INFINITY;
            for (Series s : series) for (double v : s.y()) if (Double.isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
            if (hi == lo) { double d = hi == 0 ? 1 : Math.abs(hi) * 0.1; lo -= d; hi += d; }
            double step = niceStep(hi - lo);
            st.setYAxisMin(Math.floor(lo / step) * step);
            st.setYAxisMax(Math.ceil(hi / step) * step);
            st.setLegendPosition(legendCorner(series, Math.floor(lo / step) * step, Math.ceil(hi / step) * step));
        }
        Graphics2D panel = (Graphics2D) g.create(left, top, width, height);
        try {
            chart.paint(panel, width, height);
        } finally {
            panel.dispose();
        }
    }

    /** The inside corner whose quarter of the plot holds the fewest points (ties: top right, top left, bottom right, bottom left). */
    private static Styler.LegendPosition legendCorner(List<Series> series, double yMin, double yMax) {
        double xMin = Double.POSITIVE_INFINITY, xMax = Double.NEGATIVE_INFINITY;
        for (Series s : series) for (double v : s.x()) if (Double.isFinite(v)) { xMin = Math.min(xMin, v); xMax = Math.max(xMax, v); }
        int[] counts = new int[4]; // NE, NW, SE, SW
        for (Series s : series) {
            for (int i = 0; i < s.x().length; i++) {
                if (!Double.isFinite(s.y()[i])) continue;
                boolean right = s.x()[i] >= (xMin + xMax) / 2, top = s.y()[i] >= (yMin + yMax) / 2;
                counts[(top ? 0 : 2) + (right ? 0 : 1)]++;
            }
        }
        Styler.LegendPosition[] corners = {Styler.LegendPosition.InsideNE, Styler.LegendPosition.InsideNW, Styler.LegendPosition.InsideSE,
                Styler.LegendPosition.InsideSW};
        int best = 0;
        for (int k = 1; k < 4; k++) if (counts[k] < counts[best]) best = k;
        return corners[best];
    }

    static double niceStep(double range) {
        if (!(range > 0)) return 1;
        double raw = range / 5, mag = Math.pow(10, Math.floor(Math.log10(raw))), f = raw / mag;
        return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
    }
}
