package io.mmdit4j.image;

import io.mmdit4j.pipeline.InvalidRequestException;
import io.mmdit4j.pipeline.Recordings;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.zip.Inflater;

import static io.mmdit4j.image.Pngs.chunk;
import static io.mmdit4j.image.Pngs.iTXt;
import static io.mmdit4j.image.Pngs.latin1;
import static io.mmdit4j.image.Pngs.png;
import static io.mmdit4j.image.Pngs.tEXt;
import static io.mmdit4j.image.Pngs.zTXt;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Reading a PNG's text chunks: every kind of text, and every kind of damage turned into one clear message. */
class PngTextTest {
    @TempDir
    Path tmp;

    private Path file(String name, byte[] bytes) throws IOException {
        return Files.write(tmp.resolve(name), bytes);
    }

    private static ImageFormatException bad(Path file, String... fragments) {
        ImageFormatException e = assertThrows(ImageFormatException.class, () -> PngImages.readText(file));
        String m = e.getMessage();
        assertTrue(m.startsWith(file.toString() + ": "), m);
        for (String f : fragments) assertTrue(m.contains(f), () -> "message should contain '" + f + "': " + m);
        return e;
    }

    @Test
    void readsEveryKindOfTextInFileOrder() throws IOException {
        byte[] bytes = png(tEXt("Title", "caf\u00e9"), zTXt("Comment", Pngs.zlib(latin1("zipped \u00e9"))),
                iTXt("mmdit4j", "{\"prompt\":\"\u72fc\"}", false), iTXt("packed", "\u00fcber ".repeat(100), true));
        Map<String, String> want = new LinkedHashMap<>();
        want.put("Title", "caf\u00e9");
        want.put("Comment", "zipped \u00e9");
        want.put("mmdit4j", "{\"prompt\":\"\u72fc\"}");
        want.put("packed", "\u00fcber ".repeat(100));
        assertEquals(want, PngImages.readText(file("all.png", bytes)));
        assertEquals(Arrays.asList(want.keySet().toArray()), Arrays.asList(PngImages.readText(file("all.png", bytes)).keySet().toArray()));
    }

    @Test
    void readsWhatPngImagesWrites() {
        Path f = tmp.resolve("written.png");
        PngImages.write(f, new BufferedImage(4, 3, BufferedImage.TYPE_INT_RGB), Map.of("mmdit4j", "{\"seed\":42}", "prompt", "a \u72fc"));
        assertEquals(Map.of("mmdit4j", "{\"seed\":42}", "prompt", "a \u72fc"), PngImages.readText(f));
    }

    @Test
    void textAfterTheImageDataIsRead() throws IOException {
        byte[] p = png();
        int iend = Pngs.find(p, "IEND");
        byte[] withText = Pngs.concat(Pngs.concat(Arrays.copyOf(p, iend), tEXt("late", "yes")), Arrays.copyOfRange(p, iend, p.length));
        assertEquals(Map.of("late", "yes"), PngImages.readText(file("late.png", withText)));
    }

    /** The fuzzing that found it: a corrupted IDAT type made ImageIO's reader seek backwards (IndexOutOfBoundsException). */
    @Test
    void corruptedChunkTypeIsAFormatErrorNotIndexOutOfBounds() throws IOException {
        Path written = tmp.resolve("w.png");
        PngImages.write(written, new BufferedImage(16, 16, BufferedImage.TYPE_INT_RGB), Map.of("mmdit4j", "{\"seed\":1}"));
        byte[] p = Files.readAllBytes(written);
        int idat = Pngs.find(p, "IDAT");
        p[idat + 7] = (byte) 0x80; // "IDA\x80"
        bad(file("type.png", p), "chunk at byte " + idat, "not four letters");
        p[idat + 7] = 'x'; // "IDAx": letters, an unknown ancillary chunk whose CRC no longer matches
        bad(file("type2.png", p), "chunk IDAx at byte " + idat, "CRC mismatch");
        Pngs.fixCrcs(p); // consistent again: the text is still readable, the image is not our business here
        assertEquals(Map.of("mmdit4j", "{\"seed\":1}"), PngImages.readText(file("type3.png", p)));
    }

    @Test
    void chunkLengthWithTheTopBitSetIsRejected() throws IOException {
        byte[] p = png(tEXt("k", "v"));
        int t = Pngs.find(p, "tEXt");
        ByteBuffer.wrap(p, t, 4).putInt(0x80000003);
        bad(file("len.png", p), "chunk tEXt at byte " + t, "declares 2147483651 bytes", "2^31 - 1");
    }

    @Test
    void crcMismatchNamesTheChunk() throws IOException {
        byte[] p = png(tEXt("k", "value"));
        int t = Pngs.find(p, "tEXt");
        p[t + 8 + 3] ^= 1; // a bit of the text
        bad(file("crc.png", p), "chunk tEXt at byte " + t, "CRC mismatch", "corrupt");
    }

    @Test
    void truncatedFilesAndOtherFormats() throws IOException {
        byte[] p = png(tEXt("k", "v"));
        bad(file("cut.png", Arrays.copyOf(p, p.length - 20)), "truncated");
        bad(file("noiend.png", Arrays.copyOf(p, Pngs.find(p, "IEND"))), "truncated", "without an IEND chunk");
        bad(file("short.png", new byte[] {(byte) 0x89, 'P'}), "not a PNG", "2 bytes");
        bad(file("jpeg.png", new byte[] {(byte) 0xff, (byte) 0xd8, (byte) 0xff, (byte) 0xe0, 0, 16, 'J', 'F', 'I', 'F'}), "not a PNG");
        bad(file("noihdr.png", Pngs.concat(Pngs.SIGNATURE, tEXt("k", "v"))), "first chunk is 'tEXt', expected IHDR");
        bad(tmp.resolve("absent.png"), "no such file");
    }

    @Test
    void unreadableFileSaysWhy() throws IOException {
        Path locked = io.mmdit4j.io.Unreadable.file(tmp, "locked.png");
        assertEquals(locked + ": cannot read PNG: permission denied", assertThrows(ImageFormatException.class, () -> PngImages.readText(locked)).getMessage());
    }

    @Test
    void malformedTextChunksSayWhatIsWrong() throws IOException {
        bad(file("a.png", png(chunk("tEXt", latin1("no separator")))), "tEXt chunk", "no NUL after its keyword");
        bad(file("b.png", png(chunk("tEXt", latin1("\0empty keyword")))), "keyword '' is 0 bytes, expected 1 to 79");
        bad(file("c.png", png(chunk("zTXt", latin1("k\0\1xx")))), "zTXt chunk 'k'", "compression method 1");
        bad(file("d.png", png(chunk("zTXt", latin1("k\0\0not zlib")))), "zTXt chunk 'k'", "compressed text is corrupt");
        bad(file("e.png", png(chunk("iTXt", latin1("k\0\1")))), "iTXt chunk 'k'", "compression flag and method");
        bad(file("f.png", png(chunk("iTXt", latin1("k\0\0\0en")))), "iTXt chunk 'k'", "no NUL after its language tag");
        bad(file("g.png", png(chunk("iTXt", latin1("k\0\0\0\0\0\u00ff\u00fe")))), "iTXt chunk 'k'", "not valid UTF-8");
        bad(file("h.png", png(chunk("iTXt", latin1("k\0\2\0\0\0x")))), "compression flag 2");
        byte[] z = Pngs.zlib(latin1("abc"));
        bad(file("i.png", png(zTXt("k", Arrays.copyOf(z, z.length - 3)))), "zTXt chunk 'k'", "truncated");
        bad(file("j.png", png(zTXt("k", Pngs.concat(z, new byte[] {1, 2})))), "2 bytes after the end of the compressed text");
        bad(file("k.png", png(chunk("zTXt", latin1("k\u001b[31m\0\1")))), "zTXt chunk 'k\\u001b[31m'"); // escaped, not an escape sequence
    }

    /** The hand-built bomb stream must be what it claims, or the tests below prove nothing. */
    @Test
    void zeroBombIsAValidZlibStream() throws Exception {
        for (long n : new long[] {1, 2, 258, 259, 1000, 70_000}) {
            byte[] z = Pngs.zeroBomb(n);
            Inflater inf = new Inflater();
            inf.setInput(z);
            byte[] out = new byte[(int) n + 10];
            int got = inf.inflate(out);
            assertTrue(inf.finished(), "n=" + n);
            assertEquals(0, inf.getRemaining(), "n=" + n);
            assertEquals(n, got);
            assertArrayEquals(new byte[(int) n], Arrays.copyOf(out, got));
            inf.end();
        }
    }

    /**
     * A 4 MB PNG whose zTXt inflates to 650 MB (ImageIO inflated it all: a 1.7 MB one used 3.3 GB): refused at the
     * 16 MiB limit, allocating a bounded amount on the way.
     */
    @Test
    void decompressionBombIsRefusedWithinBoundedMemory() throws IOException {
        byte[] bomb = Pngs.zeroBomb(650L << 20);
        Path f = file("bomb.png", png(zTXt("Comment", bomb)));
        assertTrue(Files.size(f) > 4_000_000 && Files.size(f) < 5_000_000, "size " + Files.size(f));
        com.sun.management.ThreadMXBean mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        long before = mx.getCurrentThreadAllocatedBytes();
        bad(f, "zTXt chunk 'Comment'", "16 MiB limit", "decompression bomb");
        long allocated = mx.getCurrentThreadAllocatedBytes() - before;
        assertTrue(allocated < 128L << 20, "reading the bomb allocated " + (allocated >> 20) + " MB");
        // The same through iTXt, and spread over several chunks that are each below the limit.
        bad(file("bomb2.png", png(chunk("iTXt", Pngs.concat(latin1("k\0\1\0\0\0"), Pngs.zeroBomb(17 << 20))))), "iTXt chunk 'k'", "16 MiB limit");
        byte[] tenMb = Pngs.zeroBomb(10 << 20);
        bad(file("bomb3.png", png(zTXt("a", tenMb), zTXt("b", tenMb))), "zTXt chunk 'b'", "16 MiB limit");
    }

    @Test
    void settingsFromADamagedPngAreAnInvalidRequest() throws IOException {
        byte[] p = png(iTXt("mmdit4j", "{\"seed\":1}", false));
        p[Pngs.find(p, "iTXt") + 10] ^= 1;
        Path f = file("damaged.png", p);
        InvalidRequestException e = assertThrows(InvalidRequestException.class, () -> Recordings.read(f));
        assertTrue(e.getMessage().contains("CRC mismatch"), e.getMessage());
        Path notJson = file("notjson.png", png(iTXt("mmdit4j", "{\"seed\":1} trailing", false)));
        e = assertThrows(InvalidRequestException.class, () -> Recordings.read(notJson));
        assertTrue(e.getMessage().contains("not valid JSON"), e.getMessage());
        Path array = file("array.png", png(iTXt("mmdit4j", "[1]", false)));
        e = assertThrows(InvalidRequestException.class, () -> Recordings.read(array));
        assertTrue(e.getMessage().contains("not a JSON object"), e.getMessage());
        assertFalse(e.getMessage().isBlank());
    }
}
