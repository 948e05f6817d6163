package io.mmdit4j.research;

import io.mmdit4j.image.PngImages;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.FontMetrics;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * A labelled grid of images drawn with java.awt (headless): a title, column labels on top, row labels on the left, and a
 * caption under each image. Small images are enlarged by an integer factor (nearest neighbour) to at least
 * {@link #MIN_CELL} pixels so that they can be compared by eye; images larger than {@link #MAX_CELL} are shrunk to it.
 */
public final class ContactSheet {
    public static final int MIN_CELL = 128;
    /** Images larger than this (either side) are drawn shrunk to it. */
    public static final int MAX_CELL = 320;
    private static final int PAD = 8;

    /** One image with its caption; a null image draws an empty frame ("missing"). */
    public record Cell(BufferedImage image, String caption) {}

    private ContactSheet() {}

    /**
     * @param title one or more lines (separated by {@code \n})
     * @param cells rows × columns, all images the same size
     */
    public static BufferedImage render(String title, List<String> rowLabels, List<String> colLabels, List<List<Cell>> cells) {
        Headless.ensure();
        int iw = 0, ih = 0;
        for (List<Cell> row : cells) for (Cell c : row) if (c.image() != null) { iw = c.image().getWidth(); ih = c.image().getHeight(); }
        if (iw == 0) { iw = 64; ih = 64; }
        int big = Math.max(iw, ih);
        int cw, ch;
        if (big > MAX_CELL) { // large images are shrunk (bilinear) so that a sheet stays viewable
            cw = (int) Math.round((double) iw * MAX_CELL / big);
            ch = (int) Math.round((double) ih * MAX_CELL / big);
        } else {
            int scale = Math.max(1, (MIN_CELL + big - 1) / big); // small ones are enlarged by an integer factor (nearest)
            cw = iw * scale;
            ch = ih * scale;
        }
        Font font = new Font(Font.SANS_SERIF, Font.PLAIN, 12);
        Font bold = font.deriveFont(Font.BOLD, 13f);
        BufferedImage probe = new BufferedImage(1, 1, BufferedImage.TYPE_INT_RGB);
        Graphics2D pg = probe.createGraphics();
        FontMetrics fm = pg.getFontMetrics(font);
        int line = fm.getHeight();
        int labelW = 0;
        for (String r : rowLabels) labelW = Math.max(labelW, fm.stringWidth(clip(r, 40)));
        labelW = Math.min(labelW + 2 * PAD, 320);
        int colW = cw + PAD;
        String[] titleLines = title.split("\n");
        int headerH = line * (titleLines.length + 1) + PAD;
        int captionH = line + 4;
        int rowH = ch + captionH + PAD;
        int titleW = 0;
        for (String t : titleLines) titleW = Math.max(titleW, pg.getFontMetrics(bold).stringWidth(t));
        int width = Math.max(labelW + colLabels.size() * colW + PAD, Math.min(titleW + 2 * PAD, 1600));
        int height = headerH + line + rowLabels.size() * rowH + PAD;
        pg.dispose();

        BufferedImage sheet = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = sheet.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
        g.setRenderingHint(RenderingHints.KEY_INTERPOLATION, big > MAX_CELL ? RenderingHints.VALUE_INTERPOLATION_BILINEAR
                : RenderingHints.VALUE_INTERPOLATION_NEAREST_NEIGHBOR);
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, width, height);
        g.setColor(Color.BLACK);
        g.setFont(bold);
        for (int i = 0; i < titleLines.length; i++) g.drawString(fit(titleLines[i], g.getFontMetrics(), width - 2 * PAD), PAD, line * (i + 1));
        g.setFont(font);
        int top = headerH + line;
        for (int c = 0; c < colLabels.size(); c++) {
            String s = fit(colLabels.get(c), fm, cw);
            g.drawString(s, labelW + c * colW + (cw - fm.stringWidth(s)) / 2, top - 6);
        }
        for (int r = 0; r < rowLabels.size(); r++) {
            int y = top + r * rowH;
            g.setColor(Color.BLACK);
            g.drawString(fit(rowLabels.get(r), fm, labelW - PAD), PAD, y + ch / 2 + fm.getAscent() / 2);
            for (int c = 0; c < colLabels.size(); c++) {
                Cell cell = cells.get(r).get(c);
                int x = labelW + c * colW;
                if (cell.image() != null) {
                    g.drawImage(cell.image(), x, y, cw, ch, null);
                } else {
                    g.setColor(Color.LIGHT_GRAY);
                    g.setStroke(new BasicStroke(1));
                    g.drawRect(x, y, cw - 1, ch - 1);
                    g.drawString("missing", x + PAD, y + ch / 2);
                }
                g.setColor(Color.DARK_GRAY);
                String cap = fit(cell.caption() == null ? "" : cell.caption(), fm, cw);
                g.drawString(cap, x + (cw - fm.stringWidth(cap)) / 2, y + ch + fm.getAscent() + 2);
            }
        }
        g.dispose();
        return sheet;
    }

    public static void write(Path file, BufferedImage sheet, String title) {
        PngImages.write(file, sheet, Map.of("Title", title.replace('\n', ' ')));
    }

    private static String clip(String s, int n) {
        return s.length() <= n ? s : s.substring(0, n - 1) + "…";
    }

    /** {@code s} shortened with an ellipsis to fit {@code width} pixels. */
    static String fit(String s, FontMetrics fm, int width) {
        if (fm.stringWidth(s) <= width) return s;
        String t = s;
        while (t.length() > 1 && fm.stringWidth(t + "…") > width) t = t.substring(0, t.length() - 1);
        return t + "…";
    }
}
