package io.mmdit4j.io.gguf;

import io.mmdit4j.GoldenData;
import io.mmdit4j.io.FuzzMessages;
import io.mmdit4j.io.ModelFormatException;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * 150,000 seeded mutations of GGUF headers — the golden files' real headers (every ggml type, KV arrays, the
 * {@code comfy.gguf.orig_shape} arrays) with bytes flipped, counts, lengths, dimensions, type ids and offsets replaced by
 * hostile numbers (0, 2^32−1, 2^63, −1, ...), bytes inserted, deleted and truncated, and wrong file sizes: each either
 * parses (and then every tensor lies inside the data section, aligned, without overlap, its byte size its type's) or fails
 * with a {@link ModelFormatException} whose message starts with the file; anything else fails the test with the seed.
 */
class GgufFuzzTest {
    static final int CASES = 150_000;
    private static final Path FILE = Path.of("fuzz.gguf");

    private record Seed(byte[] header, long fileSize) {}

    private static List<Seed> seeds() throws IOException {
        List<Seed> seeds = new ArrayList<>();
        try (Stream<Path> s = Files.list(GoldenData.root().resolve("gguf/cases"))) {
            for (Path dir : s.filter(d -> d.getFileName().toString().startsWith("dequant_")).sorted().toList()) {
                Path f = dir.resolve("tensors.gguf");
                GgufHeader h = GgufHeader.read(f);
                byte[] all = Files.readAllBytes(f);
                seeds.add(new Seed(Arrays.copyOf(all, (int) h.dataStart()), all.length));
            }
        }
        Path model = GoldenData.root().resolve("gguf/models/wide-schnell/flux1-wide-schnell-Q4_K_M.gguf");
        GgufHeader h = GgufHeader.read(model);
        try (var ch = java.nio.channels.FileChannel.open(model)) {
            ByteBuffer b = ByteBuffer.allocate((int) h.dataStart());
            while (b.hasRemaining()) ch.read(b, b.position());
            seeds.add(new Seed(b.array(), Files.size(model)));
        }
        return seeds;
    }

    @Test
    void mutatedHeadersFailOnlyWithModelFormatException() throws IOException {
        List<Seed> seeds = seeds();
        Random r = new Random(150_000);
        List<String> escaped = new ArrayList<>();
        int parsed = 0, refused = 0;
        long t0 = System.nanoTime();
        for (int i = 0; i < CASES; i++) {
            long caseSeed = r.nextLong();
            Random cr = new Random(caseSeed);
            Seed seed = seeds.get(cr.nextInt(seeds.size()));
            byte[] header = mutate(seed.header(), cr);
            long fileSize = seed.fileSize() + header.length - seed.header().length;
            if (cr.nextInt(6) == 0) fileSize = Math.max(0, fileSize + cr.nextInt(4001) - 3000);
            byte[] start = cr.nextInt(8) == 0 ? Arrays.copyOf(header, cr.nextInt(header.length + 1)) : header;
            long size = fileSize;
            FuzzMessages.Outcome o = FuzzMessages.attempt(FILE, i, caseSeed, () -> accepted(GgufHeader.parse(FILE, size, start), size), escaped);
            if (o == FuzzMessages.Outcome.PARSED) parsed++;
            if (o == FuzzMessages.Outcome.REFUSED) refused++;
            if (escaped.size() > 10) break;
        }
        double s = (System.nanoTime() - t0) / 1e9;
        System.out.printf("GgufFuzzTest: %d mutated headers in %.2f s: %d parsed, %d refused with ModelFormatException%n", CASES, s, parsed, refused);
        if (!escaped.isEmpty()) fail("exceptions other than ModelFormatException, or headers wrongly accepted:\n" + String.join("\n", escaped));
        assertTrue(parsed > CASES / 50 && refused > CASES / 4, parsed + " parsed, " + refused + " refused");
        assertTrue(s < 90, "the GGUF header fuzz must stay well under a minute and a half: " + s + " s");
    }

    /** What is wrong with an accepted header, checked independently of the parser (null: nothing). */
    private static String accepted(GgufHeader h, long fileSize) {
        if (h.version() != 3) return "version " + h.version();
        long data = fileSize - h.dataStart();
        if (h.dataStart() > fileSize || h.dataStart() % h.alignment() != 0) return "data start " + h.dataStart();
        List<GgufHeader.Info> infos = new ArrayList<>(h.tensors().values());
        infos.sort((a, b) -> Long.compare(a.begin(), b.begin()));
        long end = 0;
        for (GgufHeader.Info t : infos) {
            long n = 1;
            for (long d : t.ne()) n = Math.multiplyExact(n, d);
            if (t.numel() != n) return t.name() + ": shape " + Arrays.toString(t.shape()) + " for ne " + Arrays.toString(t.ne());
            if (!t.type().supported() || t.ne()[0] % t.type().blockElements() != 0) return t.name() + ": type " + t.type();
            if (t.byteLength() != n / t.type().blockElements() * t.type().blockBytes()) return t.name() + ": " + t.byteLength() + " bytes";
            if (t.begin() < 0 || t.end() > data || t.begin() % h.alignment() != 0) return t.name() + ": range [" + t.begin() + ", " + t.end() + ")";
            if (t.byteLength() > 0 && t.begin() < end) return t.name() + ": overlap";
            if (t.byteLength() > 0) end = t.end();
        }
        return null;
    }

    private static final long[] HOSTILE = {0, 1, 2, 3, 5, 31, 32, 33, 255, 256, 0xFFFF, 0xFFFFFFFFL, 1L << 32, 1L << 40, Long.MAX_VALUE,
            Long.MIN_VALUE, -1, -2, 1L << 62};

    /** 1–4 mutations of the header bytes. */
    static byte[] mutate(byte[] h, Random r) {
        byte[] b = h.clone();
        int n = 1 + r.nextInt(4);
        for (int k = 0; k < n && b.length > 0; k++) {
            int at = r.nextInt(b.length);
            switch (r.nextInt(9)) {
                case 0 -> b[at] ^= (byte) (1 << r.nextInt(8));
                case 1 -> b[at] = (byte) r.nextInt(256);
                case 2 -> b = put(b, at, HOSTILE[r.nextInt(HOSTILE.length)], 8);
                case 3 -> b = put(b, at, HOSTILE[r.nextInt(HOSTILE.length)], 4);
                case 4 -> b = put(b, aligned(b, r, 8, 24), HOSTILE[r.nextInt(HOSTILE.length)], 8); // the counts
                case 5 -> { // delete a run
                    int len = Math.min(b.length - at, 1 + r.nextInt(16));
                    byte[] c = new byte[b.length - len];
                    System.arraycopy(b, 0, c, 0, at);
                    System.arraycopy(b, at + len, c, at, b.length - at - len);
                    b = c;
                }
                case 6 -> { // insert random bytes
                    int len = 1 + r.nextInt(16);
                    byte[] c = new byte[b.length + len];
                    System.arraycopy(b, 0, c, 0, at);
                    for (int i = 0; i < len; i++) c[at + i] = (byte) r.nextInt(256);
                    System.arraycopy(b, at, c, at + len, b.length - at);
                    b = c;
                }
                case 7 -> b = Arrays.copyOf(b, at); // truncate
                default -> b = put(b, at, r.nextInt(40), 4); // a small number: a type id, a value type, a dimension count
            }
        }
        return b;
    }

    private static int aligned(byte[] b, Random r, int from, int to) {
        return Math.min(b.length - 1, from + 8 * r.nextInt((to - from) / 8 + 1));
    }

    private static byte[] put(byte[] b, int at, long v, int width) {
        if (at + width > b.length) return b;
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).position(at);
        for (int i = 0; i < width; i++) b[at + i] = (byte) (v >>> (8 * i));
        return b;
    }
}
