package io.mmdit4j.train;

import javax.imageio.ImageIO;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.Locale;

/** The loss curve as a PNG (Java2D): every step's loss in light grey, a moving average in blue, written atomically. */
public final class LossPlot {
    private LossPlot() {}

    public static void write(Path file, List<Double> losses, String title) throws IOException {
        int w = 720, h = 400, left = 70, right = 20, top = 40, bottom = 50;
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        try {
            g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
            g.setColor(Color.WHITE);
            g.fillRect(0, 0, w, h);
            g.setColor(Color.BLACK);
            g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 13));
            g.drawString(title, left, 22);
            g.drawRect(left, top, w - left - right, h - top - bottom);
            int n = losses.size();
            double lo = Double.MAX_VALUE, hi = -Double.MAX_VALUE;
            for (double l : losses) {
                lo = Math.min(lo, l);
                hi = Math.max(hi, l);
            }
            if (n == 0) {
                lo = 0;
                hi = 1;
            }
            if (hi - lo < 1e-12) hi = lo + 1;
            double plotW = w - left - right, plotH = h - top - bottom;
            g.drawString(String.format(Locale.ROOT, "%.4g", hi), 4, top + 10);
            g.drawString(String.format(Locale.ROOT, "%.4g", lo), 4, top + (int) plotH);
            g.drawString("step 1", left, h - bottom + 18);
            g.drawString("step " + n, w - right - 70, h - bottom + 18);
            g.drawString("loss", 4, top + (int) plotH / 2);
            int window = Math.max(1, n / 50);
            double sum = 0;
            int px = -1, py = -1, ax = -1, ay = -1;
            for (int i = 0; i < n; i++) {
                int x = left + (int) Math.round(n == 1 ? 0 : plotW * i / (n - 1));
                int y = top + (int) Math.round(plotH * (hi - losses.get(i)) / (hi - lo));
                g.setColor(new Color(190, 190, 190));
                if (px >= 0) g.drawLine(px, py, x, y);
                px = x;
                py = y;
                sum += losses.get(i);
                if (i >= window) sum -= losses.get(i - window);
                double avg = sum / Math.min(i + 1, window);
                int yy = top + (int) Math.round(plotH * (hi - avg) / (hi - lo));
                g.setColor(new Color(30, 80, 200));
                g.setStroke(new BasicStroke(2f));
                if (ax >= 0) g.drawLine(ax, ay, x, yy);
                g.setStroke(new BasicStroke(1f));
                ax = x;
                ay = yy;
            }
        } finally {
            g.dispose();
        }
        Path tmp = file.resolveSibling("." + file.getFileName() + ".tmp");
        ImageIO.write(img, "png", tmp.toFile());
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }
}
