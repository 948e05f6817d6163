package io.mmdit4j.spark;

import org.apache.spark.sql.SparkSession;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;

/** One local-mode session for every test class of this JVM (Spark starts in seconds, once), and test helpers. */
final class LocalSpark {
    private static SparkSession session;

    private LocalSpark() {}

    /** {@code local[2]}: two task threads in this JVM, sharing one pipeline. */
    static synchronized SparkSession session() {
        if (session == null) {
            session = SparkSession.builder().master("local[2]").appName("mmdit4j-spark-tests")
                    .config("spark.ui.enabled", "false")
                    .config("spark.driver.bindAddress", "127.0.0.1")
                    .config("spark.driver.host", "localhost")
                    .config("spark.sql.shuffle.partitions", "4")
                    .getOrCreate();
        }
        return session;
    }

    /** An image's pixels as R, G, B bytes. */
    static int[] pixels(Path png) throws IOException {
        BufferedImage img = ImageIO.read(png.toFile());
        int[] rgb = img.getRGB(0, 0, img.getWidth(), img.getHeight(), null, 0, img.getWidth());
        int[] out = new int[rgb.length * 3];
        for (int i = 0; i < rgb.length; i++) {
            out[3 * i] = (rgb[i] >> 16) & 255;
            out[3 * i + 1] = (rgb[i] >> 8) & 255;
            out[3 * i + 2] = rgb[i] & 255;
        }
        return out;
    }

    /** The largest difference of two images' pixels, in 8-bit levels (Integer.MAX_VALUE when the sizes differ). */
    static int maxDiff(Path a, Path b) throws IOException {
        int[] x = pixels(a), y = pixels(b);
        if (x.length != y.length) return Integer.MAX_VALUE;
        int worst = 0;
        for (int i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
        return worst;
    }
}
