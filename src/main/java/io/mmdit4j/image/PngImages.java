package io.mmdit4j.image;

import io.mmdit4j.runtime.Tensors;
import org.bytedeco.pytorch.Tensor;
import org.w3c.dom.Node;

import javax.imageio.IIOImage;
import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.ImageTypeSpecifier;
import javax.imageio.ImageWriter;
import javax.imageio.metadata.IIOMetadata;
import javax.imageio.metadata.IIOMetadataNode;
import javax.imageio.stream.ImageInputStream;
import javax.imageio.stream.ImageOutputStream;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * PNG output with generation settings as UTF-8 text chunks ({@code iTXt}), readable by any PNG tool, and
 * read back by {@code mmdit inspect} and {@code generate --from}. Files appear atomically.
 */
public final class PngImages {
    private PngImages() {}

    private static final String FORMAT = "javax_imageio_png_1.0";

    /** One image [3, H, W] in [0, 1] to 8-bit RGB, rounding half to even as numpy's {@code (x*255).round()}. */
    public static BufferedImage toRgb(Tensor image) {
        long[] s = Tensors.shape(image);
        if (s.length != 3 || s[0] != 3) throw new IllegalArgumentException("image has shape " + Arrays.toString(s) + ", expected [3, H, W]");
        int h = (int) s[1], w = (int) s[2];
        float[] px = Tensors.toFloats(image);
        BufferedImage out = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        int plane = h * w;
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                int i = y * w + x;
                out.setRGB(x, y, (byte8(px[i]) << 16) | (byte8(px[plane + i]) << 8) | byte8(px[2 * plane + i]));
            }
        }
        return out;
    }

    private static int byte8(float v) {
        double c = Math.min(1.0, Math.max(0.0, v)); // NaN becomes 0 below
        long r = (long) Math.rint(c * 255.0);
        return Double.isNaN(v) ? 0 : (int) r;
    }

    public static void write(Path file, BufferedImage image, Map<String, String> text) {
        ImageWriter writer = ImageIO.getImageWritersByFormatName("png").next();
        try {
            IIOMetadata meta = writer.getDefaultImageMetadata(ImageTypeSpecifier.createFromRenderedImage(image), writer.getDefaultWriteParam());
            IIOMetadataNode root = new IIOMetadataNode(FORMAT);
            IIOMetadataNode itxt = new IIOMetadataNode("iTXt");
            text.forEach((k, v) -> {
                IIOMetadataNode e = new IIOMetadataNode("iTXtEntry");
                e.setAttribute("keyword", k);
                e.setAttribute("compressionFlag", "FALSE");
                e.setAttribute("compressionMethod", "0");
                e.setAttribute("languageTag", "");
                e.setAttribute("translatedKeyword", "");
                e.setAttribute("text", v);
                itxt.appendChild(e);
            });
            root.appendChild(itxt);
            meta.mergeTree(FORMAT, root);
            Path dir = file.toAbsolutePath().getParent();
            Files.createDirectories(dir);
            Path tmp = Files.createTempFile(dir, "." + file.getFileName(), ".part");
            try {
                try (ImageOutputStream out = ImageIO.createImageOutputStream(tmp.toFile())) {
                    writer.setOutput(out);
                    writer.write(null, new IIOImage(image, null, meta), null);
                }
                io.mmdit4j.runtime.Files2.readableByAll(tmp); // temp files are created 0600
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            } finally {
                Files.deleteIfExists(tmp);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": cannot write PNG: " + e.getMessage(), e);
        } finally {
            writer.dispose();
        }
    }

    /** The text chunks (tEXt, zTXt and iTXt) of a PNG, in file order. */
    public static Map<String, String> readText(Path file) {
        Map<String, String> out = new LinkedHashMap<>();
        try (ImageInputStream in = ImageIO.createImageInputStream(file.toFile())) {
            if (in == null) throw new IllegalArgumentException(file + ": cannot open");
            Iterator<ImageReader> readers = ImageIO.getImageReaders(in);
            if (!readers.hasNext()) throw new IllegalArgumentException(file + ": not an image ImageIO can read");
            ImageReader reader = readers.next();
            try {
                reader.setInput(in);
                if (!reader.getFormatName().equalsIgnoreCase("png")) throw new IllegalArgumentException(file + ": not a PNG");
                Node root = reader.getImageMetadata(0).getAsTree(FORMAT);
                for (Node n = root.getFirstChild(); n != null; n = n.getNextSibling()) {
                    String kind = n.getNodeName();
                    if (!kind.equals("tEXt") && !kind.equals("iTXt") && !kind.equals("zTXt")) continue;
                    for (Node e = n.getFirstChild(); e != null; e = e.getNextSibling()) {
                        IIOMetadataNode entry = (IIOMetadataNode) e;
                        String value = kind.equals("tEXt") ? entry.getAttribute("value") : entry.getAttribute("text");
                        out.put(entry.getAttribute("keyword"), value);
                    }
                }
            } finally {
                reader.dispose();
            }
        } catch (IOException e) {
            throw new IllegalArgumentException(file + ": cannot read PNG: " + e.getMessage(), e);
        }
        return out;
    }
}
