package io.mmdit4j.image;

import io.mmdit4j.guidance.Direction;
import io.mmdit4j.guidance.NormControl;
import io.mmdit4j.pipeline.GenerationRequest;
import io.mmdit4j.pipeline.GenerationSettings;
import io.mmdit4j.pipeline.InvalidRequestException;
import io.mmdit4j.pipeline.LoadOptions;
import io.mmdit4j.pipeline.Pipelines;
import io.mmdit4j.pipeline.PreparedModel;
import io.mmdit4j.pipeline.Recordings;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static io.mmdit4j.image.Pngs.chunk;
import static io.mmdit4j.image.Pngs.iTXt;
import static io.mmdit4j.image.Pngs.png;
import static io.mmdit4j.image.Pngs.tEXt;
import static io.mmdit4j.image.Pngs.zTXt;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * 20,000 seeded mutations of real and hand-built PNGs through the text reader: each either reads or fails with an
 * {@link ImageFormatException}; any other exception (ImageIO's reader let 398 in 20,000 escape as
 * IndexOutOfBoundsException) fails the test with the seed that reproduces it. Deterministic; about a second.
 */
class PngFuzzTest {
    static final int CASES = 20_000;

    @Test
    void mutatedPngsFailOnlyWithImageFormatException() throws IOException {
        List<byte[]> seeds = seeds();
        Random r = new Random(20_000);
        List<String> escaped = new ArrayList<>();
        int read = 0, refused = 0;
        long t0 = System.nanoTime();
        for (int i = 0; i < CASES; i++) {
            long caseSeed = r.nextLong();
            byte[] m = mutate(seeds.get(i % seeds.size()), new Random(caseSeed));
            try {
                PngText.parse("case-" + i, m);
                read++;
            } catch (ImageFormatException e) {
                refused++;
                if (e.getMessage() == null || !e.getMessage().startsWith("case-" + i + ": ")) escaped.add("case " + i + ": unclear message " + e.getMessage());
            } catch (Throwable e) {
                if (escaped.size() < 10) escaped.add("case " + i + " (seed " + caseSeed + "): " + e);
                else escaped.set(9, "... and more");
            }
        }
        double s = (System.nanoTime() - t0) / 1e9;
        System.out.printf("PngFuzzTest: %d mutated PNGs in %.2f s: %d read, %d refused with ImageFormatException%n", CASES, s, read, refused);
        if (!escaped.isEmpty()) fail("exceptions other than ImageFormatException:\n" + String.join("\n", escaped));
        assertTrue(refused > CASES / 4 && read > CASES / 20, "the mutations should both break and spare files: " + read + " read, " + refused + " refused");
        assertTrue(s < 60, "the PNG fuzz must stay well under a minute (1 s on 2 idle cores): " + s + " s");
    }

    /**
     * 2,000 mutated settings records, each in an intact PNG, through {@link Recordings#read} (what {@code generate --from}
     * calls): each is read or refused with an {@link InvalidRequestException}, never another exception.
     */
    @Test
    void mutatedSettingsRecordsFailOnlyWithInvalidRequestException(@TempDir Path tmp) {
        PreparedModel demo = Pipelines.prepare("flux-tiny-demo", LoadOptions.defaults());
        GenerationSettings s = demo.resolve(GenerationRequest.builder().prompt("a wolf").prompt("a fox").seed(7).steps(3)
                .guide(Direction.preset("aesthetics")).guide(Direction.of("sharp", "blurry").w(2).layers("2-3").steps("0-1").rowWeights(1, 0))
                .normControl(NormControl.parse("keep-temb-norm")).guidanceScale(4).build());
        String record = s.forImage(0).toJson().toString();
        Random r = new Random(2_000);
        List<String> escaped = new ArrayList<>();
        int read = 0;
        for (int i = 0; i < 2_000; i++) {
            long caseSeed = r.nextLong();
            byte[] mutated = io.mmdit4j.io.JsonMutations.mutate(record, new Random(caseSeed));
            Path f = tmp.resolve("r" + (i % 10) + ".png");
            try {
                Files.write(f, png(chunk("iTXt", Pngs.concat(Pngs.latin1("mmdit4j\0\0\0\0\0"), mutated))));
                Recordings.read(f);
                read++;
            } catch (InvalidRequestException e) {
                if (!e.getMessage().startsWith(f.toString())) escaped.add("case " + i + ": message does not name the file: " + e.getMessage());
            } catch (Throwable e) {
                escaped.add("case " + i + " (seed " + caseSeed + "): " + e + " at " + (e.getStackTrace().length > 0 ? e.getStackTrace()[0] : "?"));
            }
            if (escaped.size() > 10) break;
        }
        if (!escaped.isEmpty()) fail("exceptions other than InvalidRequestException:\n" + String.join("\n", escaped));
        assertTrue(read > 0, "some mutations keep the record valid");
    }

    /** A PNG as PngImages writes it, and hand-built ones with every kind of text chunk. */
    private static List<byte[]> seeds() throws IOException {
        Path f = Files.createTempFile("fuzz", ".png");
        try {
            BufferedImage img = new BufferedImage(16, 16, BufferedImage.TYPE_INT_RGB);
            for (int y = 0; y < 16; y++) for (int x = 0; x < 16; x++) img.setRGB(x, y, x * 16 << 16 | y * 16 << 8 | (x ^ y));
            PngImages.write(f, img, Map.of("mmdit4j", "{\"model\":\"flux-tiny-demo\",\"prompt\":\"a wolf\",\"seed\":42,\"steps\":4}",
                    "prompt", "a wolf"));
            return List.of(Files.readAllBytes(f),
                    png(tEXt("Title", "caf\u00e9"), zTXt("Comment", Pngs.zlib("zipped text".getBytes())), iTXt("mmdit4j", "{\"seed\":1}", false)),
                    png(iTXt("packed", "\u00fcber ".repeat(40), true), chunk("tIME", new byte[7])),
                    png(zTXt("a", Pngs.zeroBomb(4000)), tEXt("b", "")));
        } finally {
            Files.deleteIfExists(f);
        }
    }

    /** One to three mutations; half the time every CRC is fixed afterwards, so the damage reaches the chunk parsers. */
    static byte[] mutate(byte[] seed, Random r) {
        byte[] m = seed.clone();
        int n = 1 + r.nextInt(3);
        for (int k = 0; k < n; k++) m = mutateOnce(m, r);
        if (r.nextBoolean()) Pngs.fixCrcs(m);
        return m;
    }

    private static byte[] mutateOnce(byte[] m, Random r) {
        if (m.length == 0) return new byte[] {(byte) r.nextInt(256)};
        switch (r.nextInt(8)) {
            case 0, 1 -> { // random bytes
                int flips = 1 + r.nextInt(4);
                for (int k = 0; k < flips; k++) m[r.nextInt(m.length)] = (byte) r.nextInt(256);
                return m;
            }
            case 2 -> { // a bit inside a text chunk
                int c = textChunk(m, r);
                int len = c < 0 ? 0 : ByteBuffer.wrap(m, c, 4).getInt();
                if (len > 0 && c + 8L + len <= m.length) m[c + 8 + r.nextInt(len)] ^= (byte) (1 << r.nextInt(8));
                else m[r.nextInt(m.length)] ^= 1;
                return m;
            }
            case 3 -> { // a chunk length
                int c = chunkAt(m, r);
                if (c >= 0 && c + 4 <= m.length) {
                    int[] lengths = {0, 1, 2, 7, 13, 0x7fffffff, 0x80000000, 0xffffffff, ByteBuffer.wrap(m, c, 4).getInt() + 1,
                            ByteBuffer.wrap(m, c, 4).getInt() - 1, r.nextInt(), r.nextInt(200)};
                    ByteBuffer.wrap(m, c, 4).putInt(lengths[r.nextInt(lengths.length)]);
                }
                return m;
            }
            case 4 -> { // truncation
                return Arrays.copyOf(m, r.nextInt(m.length));
            }
            case 5 -> { // inserted bytes
                int at = r.nextInt(m.length + 1), k = 1 + r.nextInt(16);
                byte[] ins = new byte[k];
                r.nextBytes(ins);
                return Pngs.concat(Pngs.concat(Arrays.copyOf(m, at), ins), Arrays.copyOfRange(m, at, m.length));
            }
            case 6 -> { // deleted bytes
                int at = r.nextInt(m.length), k = Math.min(m.length - at, 1 + r.nextInt(16));
                return Pngs.concat(Arrays.copyOf(m, at), Arrays.copyOfRange(m, at + k, m.length));
            }
            default -> { // a duplicated chunk, or NULs and 0xff in text
                int c = chunkAt(m, r);
                if (c < 0) return m;
                int len = ByteBuffer.wrap(m, c, 4).getInt();
                if (len < 0 || c + 12L + len > m.length) return m;
                if (r.nextBoolean()) {
                    byte[] dup = Arrays.copyOfRange(m, c, c + 12 + len);
                    return Pngs.concat(Pngs.concat(Arrays.copyOf(m, c), dup), Arrays.copyOfRange(m, c, m.length));
                }
                if (len > 0) m[c + 8 + r.nextInt(len)] = r.nextBoolean() ? 0 : (byte) 0xff;
                return m;
            }
        }
    }

    /** The offset of a random chunk (walking the lengths as far as they are sane), or -1. */
    private static int chunkAt(byte[] m, Random r) {
        List<Integer> starts = starts(m);
        return starts.isEmpty() ? -1 : starts.get(r.nextInt(starts.size()));
    }

    private static int textChunk(byte[] m, Random r) {
        List<Integer> text = new ArrayList<>();
        for (int c : starts(m)) {
            String t = new String(m, c + 4, 4, java.nio.charset.StandardCharsets.ISO_8859_1);
            if (t.equals("tEXt") || t.equals("zTXt") || t.equals("iTXt")) text.add(c);
        }
        return text.isEmpty() ? -1 : text.get(r.nextInt(text.size()));
    }

    private static List<Integer> starts(byte[] m) {
        List<Integer> out = new ArrayList<>();
        int p = 8;
        while (p + 12 <= m.length) {
            out.add(p);
            int len = ByteBuffer.wrap(m, p, 4).getInt();
            if (len < 0 || p + 12L + len > m.length) break;
            p += 12 + len;
        }
        return out;
    }
}
