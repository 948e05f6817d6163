package io.mmdit4j.runtime;

import org.bytedeco.pytorch.global.torch.ScalarType;

import java.util.Locale;

/** Element types as safetensors names them, with their libtorch type and size. */
public enum DType {
    F64("F64", 8, ScalarType.Double),
    F32("F32", 4, ScalarType.Float),
    F16("F16", 2, ScalarType.Half),
    BF16("BF16", 2, ScalarType.BFloat16),
    F8_E4M3("F8_E4M3", 1, ScalarType.Float8_e4m3fn),
    F8_E5M2("F8_E5M2", 1, ScalarType.Float8_e5m2),
    I64("I64", 8, ScalarType.Long),
    I32("I32", 4, ScalarType.Int),
    I16("I16", 2, ScalarType.Short),
    I8("I8", 1, ScalarType.Char),
    U8("U8", 1, ScalarType.Byte),
    BOOL("BOOL", 1, ScalarType.Bool);

    private final String safetensorsName;
    private final int bytes;
    private final ScalarType scalarType;

    DType(String safetensorsName, int bytes, ScalarType scalarType) {
        this.safetensorsName = safetensorsName;
        this.bytes = bytes;
        this.scalarType = scalarType;
    }

    public String safetensorsName() { return safetensorsName; }
    public int bytes() { return bytes; }
    public ScalarType scalarType() { return scalarType; }
    public boolean isFloatingPoint() { return this == F64 || this == F32 || this == F16 || this == BF16 || isFp8(); }

    /** float8 storage types (ComfyUI's fp8 checkpoints): upcast exactly to any compute dtype, never computed in. */
    public boolean isFp8() { return this == F8_E4M3 || this == F8_E5M2; }

    /** The safetensors header name ("F32", "BF16", ...), or null when unknown. */
    public static DType fromSafetensors(String name) {
        for (DType d : values()) if (d.safetensorsName.equals(name)) return d;
        return null;
    }

    public static DType of(ScalarType t) {
        for (DType d : values()) if (d.scalarType.value == t.value) return d;
        throw new IllegalArgumentException("unsupported libtorch scalar type " + t);
    }

    /** Parses user-facing names: fp32/float32/f32, bf16/bfloat16, fp16/float16/half. */
    public static DType parse(String text) {
        switch (text.toLowerCase(Locale.ROOT)) {
            case "fp32": case "float32": case "f32": case "float": return F32;
            case "bf16": case "bfloat16": return BF16;
            case "fp16": case "float16": case "f16": case "half": return F16;
            default:
                DType d = fromSafetensors(text.toUpperCase(Locale.ROOT));
                if (d == null) throw new IllegalArgumentException("unknown dtype '" + text + "' (expected fp32, bf16 or fp16)");
                return d;
        }
    }

    /** Lower-case name as PyTorch prints it. */
    public String torchName() {
        switch (this) {
            case F64: return "float64";
            case F32: return "float32";
            case F16: return "float16";
            case BF16: return "bfloat16";
            case F8_E4M3: return "float8_e4m3fn";
            case F8_E5M2: return "float8_e5m2";
            case I64: return "int64";
            case I32: return "int32";
            case I16: return "int16";
            case I8: return "int8";
            case U8: return "uint8";
            default: return "bool";
        }
    }

    /** Model compute dtypes: fp32, bf16 or fp16 (fails with a clear message otherwise). */
    public static DType checkCompute(DType compute) {
        if (compute != F32 && compute != BF16 && compute != F16) {
            throw new IllegalArgumentException("compute dtype must be fp32, bf16 or fp16, got " + compute);
        }
        return compute;
    }
}
