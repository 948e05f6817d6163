package io.mmdit4j.io.gguf;

import io.mmdit4j.runtime.DType;

import java.util.Arrays;
import java.util.stream.Collectors;

/**
 * ggml tensor types: id, block size in elements and bytes. The float types map to a {@link DType}; the block types this
 * reader dequantizes are {@link #quantized}; the rest are known by name so that a file using them is refused clearly.
 */
public enum GgufType {
    F32(0, 1, 4, DType.F32),
    F16(1, 1, 2, DType.F16),
    Q4_0(2, 32, 18, null),
    Q4_1(3, 32, 20, null),
    Q5_0(6, 32, 22, null),
    Q5_1(7, 32, 24, null),
    Q8_0(8, 32, 34, null),
    Q2_K(10, 256, 84, null),
    Q3_K(11, 256, 110, null),
    Q4_K(12, 256, 144, null),
    Q5_K(13, 256, 176, null),
    Q6_K(14, 256, 210, null),
    BF16(30, 1, 2, DType.BF16),
    // known to ggml, not read here
    Q8_1(9, 32, 36, null, false),
    Q8_K(15, 256, 292, null, false),
    IQ2_XXS(16, 256, 66, null, false),
    IQ2_XS(17, 256, 74, null, false),
    IQ3_XXS(18, 256, 98, null, false),
    IQ1_S(19, 256, 50, null, false),
    IQ4_NL(20, 32, 18, null, false),
    IQ3_S(21, 256, 110, null, false),
    IQ2_S(22, 256, 82, null, false),
    IQ4_XS(23, 256, 136, null, false),
    I8(24, 1, 1, null, false),
    I16(25, 1, 2, null, false),
    I32(26, 1, 4, null, false),
    I64(27, 1, 8, null, false),
    F64(28, 1, 8, null, false),
    IQ1_M(29, 256, 56, null, false),
    TQ1_0(34, 256, 54, null, false),
    TQ2_0(35, 256, 66, null, false),
    MXFP4(39, 32, 17, null, false);

    private final int id;
    private final int blockElements;
    private final int blockBytes;
    private final DType dtype;
    private final boolean supported;

    GgufType(int id, int blockElements, int blockBytes, DType dtype) {
        this(id, blockElements, blockBytes, dtype, true);
    }

    GgufType(int id, int blockElements, int blockBytes, DType dtype, boolean supported) {
        this.id = id;
        this.blockElements = blockElements;
        this.blockBytes = blockBytes;
        this.dtype = dtype;
        this.supported = supported;
    }

    public int id() { return id; }
    public int blockElements() { return blockElements; }
    public int blockBytes() { return blockBytes; }

    /** The dtype of a float type (F32, F16, BF16), null for block types. */
    public DType dtype() { return dtype; }

    /** A block type this reader dequantizes (not a float type, not an unsupported one). */
    public boolean quantized() { return supported && dtype == null; }

    public boolean supported() { return supported; }

    /** Bytes of {@code elements} elements; the caller has checked that they are a whole number of blocks. */
    public long bytes(long elements) {
        return Math.multiplyExact(elements / blockElements, (long) blockBytes);
    }

    /** The type with ggml id {@code id}, or null. */
    public static GgufType ofId(long id) {
        for (GgufType t : values()) if (t.id == id) return t;
        return null;
    }

    /** The type named {@code name} (case-insensitive), or null. */
    public static GgufType named(String name) {
        for (GgufType t : values()) if (t.name().equalsIgnoreCase(name)) return t;
        return null;
    }

    /** The types this reader supports, for messages. */
    public static String supportedList() {
        return Arrays.stream(values()).filter(GgufType::supported).map(t -> t.name() + " (" + t.id + ")").collect(Collectors.joining(", "));
    }
}
