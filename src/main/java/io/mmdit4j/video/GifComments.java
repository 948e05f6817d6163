package io.mmdit4j.video;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Metadata in a GIF's Comment Extensions (GIF89a: {@code 0x21 0xFE}, data sub-blocks of up to 255 bytes, then a 0 block),
 * the one place a GIF has for text: one comment per entry, {@code key: value} in UTF-8, inserted after the logical screen
 * descriptor and global colour table, before the frames. Viewers ignore comments; {@code exiftool} and FFmpeg's demuxer
 * show them. FFmpeg's GIF muxer writes none, so {@link VideoWriter} adds them to the file it wrote.
 */
public final class GifComments {
    private GifComments() {}

    /** Comments larger than this are not metadata of ours (a bound on what {@link #read} keeps). */
    private static final int MAX_TEXT = 16 << 20;

    /** Rewrites {@code gif} with one comment extension per entry of {@code metadata} before its first block. */
    static void insert(Path gif, Map<String, String> metadata) throws IOException {
        if (metadata == null || metadata.isEmpty()) return;
        byte[] d = Files.readAllBytes(gif);
        int start = firstBlock(d);
        ByteArrayOutputStream out = new ByteArrayOutputStream(d.length + 1024);
        out.write(d, 0, start);
        for (Map.Entry<String, String> e : metadata.entrySet()) {
            byte[] text = (e.getKey() + ": " + e.getValue()).getBytes(StandardCharsets.UTF_8);
            out.write(0x21);
            out.write(0xFE);
            for (int off = 0; off < text.length; off += 255) {
                int n = Math.min(255, text.length - off);
                out.write(n);
                out.write(text, off, n);
            }
            out.write(0);
        }
        out.write(d, start, d.length - start);
        Files.write(gif, out.toByteArray());
    }

    /** The {@code key: value} comments of a GIF, in file order (other comments are skipped); empty for a file that is not a GIF. */
    public static Map<String, String> read(Path gif) throws IOException {
        byte[] d = Files.readAllBytes(gif);
        Map<String, String> out = new LinkedHashMap<>();
        if (d.length < 13 || !new String(d, 0, 3, StandardCharsets.US_ASCII).equals("GIF")) return out;
        int p = firstBlock(d);
        while (p < d.length) {
            int b = d[p] & 255;
            if (b == 0x3B) break;                  // trailer
            if (b == 0x21) {                       // extension: label, then sub-blocks
                if (p + 1 >= d.length) break;
                boolean comment = (d[p + 1] & 255) == 0xFE;
                ByteArrayOutputStream text = comment ? new ByteArrayOutputStream() : null;
                p = subBlocks(d, p + 2, text);
                if (text != null && text.size() <= MAX_TEXT) {
                    String t = text.toString(StandardCharsets.UTF_8);
                    int colon = t.indexOf(": ");
                    if (colon > 0) out.put(t.substring(0, colon), t.substring(colon + 2));
                }
            } else if (b == 0x2C) {                // image: descriptor, local colour table, LZW size, sub-blocks
                if (p + 10 > d.length) break;
                int flags = d[p + 9] & 255;
                p += 10 + ((flags & 0x80) != 0 ? 3 * (1 << ((flags & 7) + 1)) : 0) + 1;
                p = subBlocks(d, p, null);
            } else {
                break;                             // not a GIF block: stop rather than guess
            }
        }
        return out;
    }

    /** The offset after the header, the logical screen descriptor and the global colour table. */
    private static int firstBlock(byte[] d) throws IOException {
        if (d.length < 13) throw new IOException("not a GIF: " + d.length + " bytes");
        int flags = d[10] & 255;
        int at = 13 + ((flags & 0x80) != 0 ? 3 * (1 << ((flags & 7) + 1)) : 0);
        if (at > d.length) throw new IOException("not a GIF: its colour table runs past the end");
        return at;
    }

    /** Skips (or collects) data sub-blocks from {@code p}; returns the offset after the terminating 0. */
    private static int subBlocks(byte[] d, int p, ByteArrayOutputStream collect) {
        while (p < d.length) {
            int n = d[p] & 255;
            p++;
            if (n == 0) return p;
            if (collect != null && p + n <= d.length && collect.size() <= MAX_TEXT) collect.write(d, p, n);
            p += n;
        }
        return p;
    }
}
