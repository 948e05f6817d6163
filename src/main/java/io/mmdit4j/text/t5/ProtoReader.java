package io.mmdit4j.text.t5;

/**
 * A minimal reader of the protocol-buffers wire format (enough for {@code sentencepiece.ModelProto}): varints,
 * fixed32/fixed64, length-delimited fields and (skipped) groups. Every read is bounds-checked; malformed or truncated
 * input raises {@link Malformed} with the byte offset, never an {@link ArrayIndexOutOfBoundsException} or a hang.
 */
final class ProtoReader {
    static final int VARINT = 0, FIXED64 = 1, LENGTH_DELIMITED = 2, START_GROUP = 3, END_GROUP = 4, FIXED32 = 5;
    private static final int MAX_GROUP_DEPTH = 64;

    /** Malformed wire data; the message says what and where (byte offset in the whole buffer). */
    static final class Malformed extends Exception {
        private static final long serialVersionUID = 1L;

        Malformed(String message) {
            super(message);
        }
    }

    private final byte[] buf;
    private int pos;
    private final int limit;

    ProtoReader(byte[] buf) {
        this(buf, 0, buf.length);
    }

    private ProtoReader(byte[] buf, int pos, int limit) {
        this.buf = buf;
        this.pos = pos;
        this.limit = limit;
    }

    boolean hasMore() {
        return pos < limit;
    }

    int position() {
        return pos;
    }

    /** Reads a field tag; returns {@code fieldNumber << 3 | wireType}. */
    int readTag() throws Malformed {
        int at = pos;
        long tag = readVarint();
        if (tag >>> 32 != 0 || (tag >>> 3) == 0) throw new Malformed("invalid field tag " + tag + " at byte " + at);
        int wire = (int) (tag & 7);
        if (wire == 6 || wire == 7) throw new Malformed("invalid wire type " + wire + " at byte " + at);
        return (int) tag;
    }

    long readVarint() throws Malformed {
        int at = pos;
        long result = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (pos >= limit) throw new Malformed("truncated varint at byte " + at);
            byte b = buf[pos++];
            result |= (long) (b & 0x7F) << shift;
            if ((b & 0x80) == 0) return result;
        }
        throw new Malformed("varint longer than 10 bytes at byte " + at);
    }

    int readFixed32() throws Malformed {
        if (limit - pos < 4) throw new Malformed("truncated fixed32 at byte " + pos);
        int v = (buf[pos] & 0xFF) | (buf[pos + 1] & 0xFF) << 8 | (buf[pos + 2] & 0xFF) << 16 | (buf[pos + 3] & 0xFF) << 24;
        pos += 4;
        return v;
    }

    long readFixed64() throws Malformed {
        long lo = readFixed32() & 0xFFFFFFFFL;
        long hi = readFixed32() & 0xFFFFFFFFL;
        return lo | hi << 32;
    }

    float readFloat() throws Malformed {
        return Float.intBitsToFloat(readFixed32());
    }

    /** proto int32 (negative values arrive as 10-byte varints; truncated to 32 bits as protobuf does). */
    int readInt32() throws Malformed {
        return (int) readVarint();
    }

    boolean readBool() throws Malformed {
        return readVarint() != 0;
    }

    private int readLength() throws Malformed {
        int at = pos;
        long len = readVarint();
        if (len < 0 || len > limit - pos) {
            throw new Malformed("length-delimited field of " + len + " bytes at byte " + at + " runs past the end ("
                    + (limit - pos) + " bytes left)");
        }
        return (int) len;
    }

    byte[] readBytes() throws Malformed {
        int len = readLength();
        byte[] out = new byte[len];
        System.arraycopy(buf, pos, out, 0, len);
        pos += len;
        return out;
    }

    String readString() throws Malformed {
        int len = readLength();
        String s = new String(buf, pos, len, java.nio.charset.StandardCharsets.UTF_8);
        pos += len;
        return s;
    }

    /** A reader over the next length-delimited field (an embedded message); this reader moves past it. */
    ProtoReader readMessage() throws Malformed {
        int len = readLength();
        ProtoReader sub = new ProtoReader(buf, pos, pos + len);
        pos += len;
        return sub;
    }

    /** Skips the value of a field whose tag was just read. */
    void skip(int tag) throws Malformed {
        skip(tag, 0);
    }

    private void skip(int tag, int depth) throws Malformed {
        switch (tag & 7) {
            case VARINT -> readVarint();
            case FIXED64 -> readFixed64();
            case FIXED32 -> readFixed32();
            case LENGTH_DELIMITED -> {
                int len = readLength();
                pos += len;
            }
            case START_GROUP -> {
                if (depth >= MAX_GROUP_DEPTH) throw new Malformed("groups nested too deeply at byte " + pos);
                int field = tag >>> 3;
                while (true) {
                    if (!hasMore()) throw new Malformed("unterminated group (field " + field + ")");
                    int t = readTag();
                    if ((t & 7) == END_GROUP) {
                        if ((t >>> 3) != field) throw new Malformed("mismatched end-group tag at byte " + pos);
                        return;
                    }
                    skip(t, depth + 1);
                }
            }
            case END_GROUP -> throw new Malformed("unexpected end-group tag at byte " + pos);
            default -> throw new Malformed("invalid wire type " + (tag & 7) + " at byte " + pos);
        }
    }

    /** Checks the wire type of a known field. */
    static void expect(int tag, int wireType, String what) throws Malformed {
        if ((tag & 7) != wireType) {
            throw new Malformed(what + " (field " + (tag >>> 3) + ") has wire type " + (tag & 7) + ", expected " + wireType);
        }
    }
}
