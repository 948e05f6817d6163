package io.mmdit4j.image;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.zip.CRC32;
import java.util.zip.DeflaterOutputStream;

/** Hand-built PNGs for the tests: chunks with correct or broken CRCs, text chunks of every kind, decompression bombs. */
final class Pngs {
    private Pngs() {}

    static final byte[] SIGNATURE = {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

    /** One chunk: length, type, data, CRC over type and data. */
    static byte[] chunk(String type, byte[] data) {
        ByteBuffer b = ByteBuffer.allocate(12 + data.length);
        b.putInt(data.length).put(type.getBytes(StandardCharsets.US_ASCII)).put(data);
        CRC32 c = new CRC32();
        c.update(type.getBytes(StandardCharsets.US_ASCII));
        c.update(data);
        return b.putInt((int) c.getValue()).array();
    }

    /** A 1x1 RGB PNG with {@code ancillary} chunks between IHDR and IDAT. */
    static byte[] png(byte[]... ancillary) {
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        o.writeBytes(SIGNATURE);
        o.writeBytes(chunk("IHDR", ByteBuffer.allocate(13).putInt(1).putInt(1).put((byte) 8).put((byte) 2).put(new byte[3]).array()));
        for (byte[] c : ancillary) o.writeBytes(c);
        o.writeBytes(chunk("IDAT", zlib(new byte[4])));
        o.writeBytes(chunk("IEND", new byte[0]));
        return o.toByteArray();
    }

    static byte[] tEXt(String keyword, String text) {
        return chunk("tEXt", latin1(keyword + "\0" + text));
    }

    static byte[] zTXt(String keyword, byte[] compressed) {
        return chunk("zTXt", concat(latin1(keyword + "\0\0"), compressed));
    }

    static byte[] iTXt(String keyword, String text, boolean compressed) {
        byte[] utf8 = text.getBytes(StandardCharsets.UTF_8);
        return chunk("iTXt", concat(latin1(keyword + "\0" + (compressed ? "\1" : "\0") + "\0en\0" + "\0"), compressed ? zlib(utf8) : utf8));
    }

    static byte[] zlib(byte[] data) {
        ByteArrayOutputStream z = new ByteArrayOutputStream();
        try (DeflaterOutputStream d = new DeflaterOutputStream(z)) {
            d.write(data);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return z.toByteArray();
    }

    /** Rewrites every chunk's CRC to match its bytes, as far as the chunk lengths allow (so a mutation reaches the parser). */
    static void fixCrcs(byte[] png) {
        int p = 8;
        while (p + 12 <= png.length) {
            int len = ByteBuffer.wrap(png, p, 4).getInt();
            if (len < 0 || p + 12L + len > png.length) return;
            CRC32 c = new CRC32();
            c.update(png, p + 4, 4 + len);
            ByteBuffer.wrap(png, p + 8 + len, 4).putInt((int) c.getValue());
            p += 12 + len;
        }
    }

    /** The offset of the first chunk of {@code type}, or -1. */
    static int find(byte[] png, String type) {
        int p = 8;
        while (p + 12 <= png.length) {
            int len = ByteBuffer.wrap(png, p, 4).getInt();
            if (new String(png, p + 4, 4, StandardCharsets.ISO_8859_1).equals(type)) return p;
            if (len < 0) return -1;
            p += 12 + len;
        }
        return -1;
    }

    /**
     * A zlib stream of {@code n} zero bytes, written by hand as one fixed-Huffman block of 258-byte back-references
     * (13 bits each): about n / 159 bytes, built in milliseconds where Deflater takes seconds per gigabyte.
     */
    static byte[] zeroBomb(long n) {
        Bits out = new Bits(n / 150 + 64);
        out.bytes(0x78, 0x01); // zlib header: deflate, 32K window, no dictionary
        out.value(1, 1); // BFINAL
        out.value(1, 2); // BTYPE 01: fixed Huffman codes
        out.code(0x30, 8); // literal 0
        long left = n - 1;
        for (; left >= 258; left -= 258) {
            out.code(0xc5, 8); // length 258 (symbol 285)
            out.code(0, 5); // distance 1
        }
        for (; left > 0; left--) out.code(0x30, 8);
        out.code(0, 7); // end of block (symbol 256)
        out.align();
        long adler = ((n % 65521) << 16) | 1; // a = 1 + sum(0) = 1, b = n * a
        out.bytes((int) (adler >>> 24) & 0xff, (int) (adler >>> 16) & 0xff, (int) (adler >>> 8) & 0xff, (int) adler & 0xff);
        return out.toArray();
    }

    /** Deflate's bit order: values least significant bit first, Huffman codes most significant bit first. */
    private static final class Bits {
        private final ByteArrayOutputStream out;
        private int acc, count;

        Bits(long capacity) {
            out = new ByteArrayOutputStream((int) Math.min(capacity, Integer.MAX_VALUE - 8));
        }

        void value(int v, int bits) {
            for (int i = 0; i < bits; i++) bit((v >>> i) & 1);
        }

        void code(int c, int bits) {
            for (int i = bits - 1; i >= 0; i--) bit((c >>> i) & 1);
        }

        void bit(int b) {
            acc |= b << count++;
            if (count == 8) align();
        }

        void align() {
            if (count > 0) out.write(acc);
            acc = 0;
            count = 0;
        }

        void bytes(int... bs) {
            for (int b : bs) out.write(b);
        }

        byte[] toArray() {
            return out.toByteArray();
        }
    }

    static byte[] latin1(String s) {
        return s.getBytes(StandardCharsets.ISO_8859_1);
    }

    static byte[] concat(byte[] a, byte[] b) {
        byte[] c = new byte[a.length + b.length];
        System.arraycopy(a, 0, c, 0, a.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }
}
