package io.mmdit4j.image;

import io.mmdit4j.io.FileErrors;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.zip.CRC32;
import java.util.zip.DataFormatException;
import java.util.zip.Inflater;

/**
 * The text chunks ({@code tEXt}, {@code zTXt}, {@code iTXt}) of a PNG, read by walking its chunks. Not through ImageIO,
 * whose reader let mutated files escape as {@code IndexOutOfBoundsException} and inflated compressed text without bound
 * (a 4 MB {@code zTXt} ran {@code inspect} out of memory). Here every chunk's CRC is verified, compressed text inflates
 * into at most {@link #MAX_TEXT_BYTES} for the whole file, and every failure is an {@link ImageFormatException} that
 * names the file, the chunk and its byte offset.
 */
final class PngText {
    private PngText() {}

    /** All text of one PNG, decompressed, at most this many bytes: settings records are a few KB, workflow JSONs a few MB. */
    static final int MAX_TEXT_BYTES = 16 << 20;
    private static final byte[] SIGNATURE = {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

    /** The text chunks of the PNG {@code in} (named {@code origin} in errors), keyword to text in file order; a later chunk with the same keyword wins. */
    static Map<String, String> read(String origin, InputStream in) throws IOException {
        return new Walk(origin, in).run();
    }

    /** {@link #read} of a PNG in memory (tests, fuzzing). */
    static Map<String, String> parse(String origin, byte[] png) {
        try {
            return read(origin, new ByteArrayInputStream(png));
        } catch (IOException e) {
            throw new IllegalStateException("a byte array cannot fail to read", e);
        }
    }

    /** One pass over the chunks of one file. */
    private static final class Walk {
        private final String origin;
        private final InputStream in;
        private final Map<String, String> text = new LinkedHashMap<>();
        private final byte[] skip = new byte[8192];
        private long pos; // bytes consumed
        private long textBytes; // decoded text so far, against MAX_TEXT_BYTES

        Walk(String origin, InputStream in) {
            this.origin = origin;
            this.in = in;
        }

        Map<String, String> run() throws IOException {
            byte[] sig = new byte[8];
            int n = in.readNBytes(sig, 0, 8);
            pos = n;
            if (n < 8 || !java.util.Arrays.equals(sig, SIGNATURE)) {
                throw error(n < 8 ? "not a PNG: the file is " + n + " bytes, shorter than the PNG signature" : "not a PNG: it does not start with the PNG signature");
            }
            for (boolean first = true; ; first = false) {
                long start = pos;
                byte[] head = new byte[8];
                n = in.readNBytes(head, 0, 8);
                pos += n;
                if (n == 0) throw error("truncated: the file ends after byte " + start + " without an IEND chunk");
                if (n < 8) throw error("truncated: the file ends inside the chunk header at byte " + start);
                long length = ByteBuffer.wrap(head, 0, 4).getInt() & 0xffffffffL;
                String type = chunkType(head, start);
                if (length > Integer.MAX_VALUE) {
                    throw error("chunk " + type + " at byte " + start + " declares " + length + " bytes, above the PNG limit of 2^31 - 1");
                }
                if (first && !type.equals("IHDR")) throw error("the first chunk is " + FileErrors.quote(type) + ", expected IHDR: the file is corrupt");
                CRC32 crc = new CRC32();
                crc.update(head, 4, 4);
                boolean isText = type.equals("tEXt") || type.equals("zTXt") || type.equals("iTXt");
                byte[] data = null;
                if (isText) {
                    if (length > MAX_TEXT_BYTES) {
                        throw error(type + " chunk at byte " + start + " is " + length + " bytes, above the " + (MAX_TEXT_BYTES >> 20)
                                + " MiB limit for a PNG's text");
                    }
                    data = in.readNBytes((int) length);
                    pos += data.length;
                    if (data.length < length) throw truncated(type, start, length);
                    crc.update(data);
                } else {
                    skip(length, crc, type, start);
                }
                byte[] stored = in.readNBytes(4);
                pos += stored.length;
                if (stored.length < 4) throw truncated(type, start, length);
                long want = ByteBuffer.wrap(stored).getInt() & 0xffffffffL;
                if (want != crc.getValue()) {
                    throw error("chunk " + type + " at byte " + start + ": CRC mismatch (stored " + String.format("%08x", want)
                            + ", computed " + String.format("%08x", crc.getValue()) + "): the file is corrupt");
                }
                if (isText) text(type, start, data);
                if (type.equals("IEND")) return text;
            }
        }

        /** Consumes a chunk's data into its CRC without keeping it (image data can be hundreds of MB). */
        private void skip(long length, CRC32 crc, String type, long start) throws IOException {
            for (long left = length; left > 0; ) {
                int n = in.read(skip, 0, (int) Math.min(left, skip.length));
                if (n < 0) throw truncated(type, start, length);
                crc.update(skip, 0, n);
                left -= n;
                pos += n;
            }
        }

        private void text(String type, long start, byte[] d) {
            int nul = indexOf(d, 0);
            if (nul < 0) throw error(type + " chunk at byte " + start + " has no NUL after its keyword");
            String keyword = new String(d, 0, nul, StandardCharsets.ISO_8859_1);
            if (nul == 0 || nul > 79) {
                throw error(type + " chunk at byte " + start + ": keyword " + FileErrors.quote(keyword) + " is " + nul
                        + " bytes, expected 1 to 79");
            }
            String where = type + " chunk " + FileErrors.quote(keyword) + " at byte " + start;
            String value = switch (type) {
                case "tEXt" -> latin1(count(where, java.util.Arrays.copyOfRange(d, nul + 1, d.length)));
                case "zTXt" -> {
                    if (nul + 1 >= d.length) throw error(where + ": no compression method");
                    if (d[nul + 1] != 0) throw error(where + ": compression method " + (d[nul + 1] & 0xff) + ", expected 0 (zlib)");
                    yield latin1(inflate(where, d, nul + 2));
                }
                default -> international(where, d, nul + 1);
            };
            text.put(keyword, value);
        }

        /** iTXt: compression flag, method, language tag NUL, translated keyword NUL, UTF-8 text (zlib-compressed when flagged). */
        private String international(String where, byte[] d, int at) {
            if (at + 2 > d.length) throw error(where + ": ends before its compression flag and method");
            int flag = d[at] & 0xff, method = d[at + 1] & 0xff;
            if (flag > 1) throw error(where + ": compression flag " + flag + ", expected 0 or 1");
            if (flag == 1 && method != 0) throw error(where + ": compression method " + method + ", expected 0 (zlib)");
            int lang = indexOf(d, at + 2);
            int translated = lang < 0 ? -1 : indexOf(d, lang + 1);
            if (translated < 0) throw error(where + ": no NUL after its language tag and translated keyword");
            byte[] raw = flag == 1 ? inflate(where, d, translated + 1) : count(where, java.util.Arrays.copyOfRange(d, translated + 1, d.length));
            try {
                return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                        .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(raw)).toString();
            } catch (CharacterCodingException e) {
                throw error(where + ": text is not valid UTF-8");
            }
        }

        /** The zlib stream from {@code at} to the end of the chunk, inflated into what is left of the text limit. */
        private byte[] inflate(String where, byte[] d, int at) {
            Inflater inf = new Inflater();
            try {
                inf.setInput(d, at, d.length - at);
                ByteArrayOutputStream out = new ByteArrayOutputStream();
                byte[] buf = new byte[1 << 16];
                while (!inf.finished()) {
                    int n = inf.inflate(buf);
                    if (n == 0) {
                        if (inf.needsDictionary()) throw error(where + ": compressed text needs a preset dictionary, which PNG does not allow");
                        if (inf.needsInput()) throw error(where + ": compressed text is truncated");
                        if (!inf.finished()) throw error(where + ": compressed text is corrupt (no progress)");
                    }
                    if (textBytes + out.size() + n > MAX_TEXT_BYTES) {
                        throw error(where + ": text decompresses past the " + (MAX_TEXT_BYTES >> 20) + " MiB limit for a PNG's text"
                                + " (a decompression bomb?)");
                    }
                    out.write(buf, 0, n);
                }
                if (inf.getRemaining() > 0) throw error(where + ": " + inf.getRemaining() + " bytes after the end of the compressed text");
                return count(where, out.toByteArray());
            } catch (DataFormatException e) {
                throw error(where + ": compressed text is corrupt (" + FileErrors.printable(String.valueOf(e.getMessage())) + ")");
            } finally {
                inf.end();
            }
        }

        /** Counts decoded text against the limit for the whole file. */
        private byte[] count(String where, byte[] text) {
            textBytes += text.length;
            if (textBytes > MAX_TEXT_BYTES) throw error(where + ": the text chunks exceed the " + (MAX_TEXT_BYTES >> 20) + " MiB limit for a PNG's text");
            return text;
        }

        private String chunkType(byte[] head, long start) {
            for (int i = 4; i < 8; i++) {
                int c = head[i] & 0xff;
                if (!(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z')) {
                    throw error("chunk at byte " + start + " has type bytes " + String.format("%02x%02x%02x%02x", head[4], head[5], head[6], head[7])
                            + ", not four letters: the file is corrupt");
                }
            }
            return new String(head, 4, 4, StandardCharsets.US_ASCII);
        }

        private ImageFormatException truncated(String type, long start, long length) {
            return error("truncated: chunk " + type + " at byte " + start + " declares " + length + " bytes, but the file ends at byte " + pos);
        }

        private ImageFormatException error(String what) {
            return new ImageFormatException(origin + ": " + what);
        }
    }

    private static String latin1(byte[] b) {
        return new String(b, StandardCharsets.ISO_8859_1);
    }

    private static int indexOf(byte[] b, int from) {
        for (int i = from; i < b.length; i++) if (b[i] == 0) return i;
        return -1;
    }
}
