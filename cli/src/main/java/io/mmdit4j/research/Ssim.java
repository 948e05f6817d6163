package io.mmdit4j.research;

import java.awt.image.BufferedImage;

/**
 * Mean structural similarity (Wang, Bovik, Sheikh, Simoncelli 2004) of two 8-bit RGB images, as their reference
 * MATLAB {@code ssim_index}: an 11×11 Gaussian window with σ = 1.5 (normalised to sum 1), {@code K1 = 0.01},
 * {@code K2 = 0.03}, dynamic range {@code L = 255}, {@code C1 = (K1·L)²}, {@code C2 = (K2·L)²}, evaluated at every
 * position where the window fits inside the image ("valid", no padding), averaged over positions, then over the
 * three channels R, G and B (each channel on its own, no colour conversion). Images smaller than 11 pixels in a
 * dimension use a window of that size with σ scaled by the same ratio. 1 means identical.
 */
public final class Ssim {
    private Ssim() {}

    public static final int WINDOW = 11;
    public static final double SIGMA = 1.5;
    public static final double K1 = 0.01;
    public static final double K2 = 0.03;
    public static final double L = 255;

    public static double mean(BufferedImage a, BufferedImage b) {
        int w = a.getWidth(), h = a.getHeight();
        if (b.getWidth() != w || b.getHeight() != h) {
            throw new IllegalArgumentException("SSIM needs images of the same size, got " + w + "x" + h + " and " + b.getWidth() + "x" + b.getHeight());
        }
        int win = Math.min(WINDOW, Math.min(w, h));
        double[] kernel = gaussian(win, SIGMA * win / WINDOW);
        double sum = 0;
        for (int ch = 0; ch < 3; ch++) sum += channel(plane(a, ch), plane(b, ch), w, h, win, kernel);
        return sum / 3;
    }

    private static double[] plane(BufferedImage img, int ch) {
        int w = img.getWidth(), h = img.getHeight();
        double[] p = new double[w * h];
        int shift = 16 - 8 * ch;
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) p[y * w + x] = (img.getRGB(x, y) >> shift) & 0xff;
        }
        return p;
    }

    /** 2-D window weights, row-major, summing to 1. */
    private static double[] gaussian(int win, double sigma) {
        double[] k = new double[win * win];
        double c = (win - 1) / 2.0, total = 0;
        for (int y = 0; y < win; y++) {
            for (int x = 0; x < win; x++) {
                double v = Math.exp(-((x - c) * (x - c) + (y - c) * (y - c)) / (2 * sigma * sigma));
                k[y * win + x] = v;
                total += v;
            }
        }
        for (int i = 0; i < k.length; i++) k[i] /= total;
        return k;
    }

    private static double channel(double[] a, double[] b, int w, int h, int win, double[] k) {
        double c1 = (K1 * L) * (K1 * L), c2 = (K2 * L) * (K2 * L);
        double total = 0;
        int n = 0;
        for (int y0 = 0; y0 + win <= h; y0++) {
            for (int x0 = 0; x0 + win <= w; x0++) {
                double ma = 0, mb = 0, saa = 0, sbb = 0, sab = 0;
                for (int dy = 0; dy < win; dy++) {
                    int row = (y0 + dy) * w + x0;
                    for (int dx = 0; dx < win; dx++) {
                        double wt = k[dy * win + dx], va = a[row + dx], vb = b[row + dx];
                        ma += wt * va;
                        mb += wt * vb;
                        saa += wt * va * va;
                        sbb += wt * vb * vb;
                        sab += wt * va * vb;
                    }
                }
                double va = saa - ma * ma, vb = sbb - mb * mb, cov = sab - ma * mb;
                total += ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2));
                n++;
            }
        }
        return total / n;
    }
}
