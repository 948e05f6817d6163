package io.mmdit4j.io.quant;

import io.mmdit4j.runtime.DType;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;

import static org.bytedeco.pytorch.global.torch.arange;
import static org.bytedeco.pytorch.global.torch.where;

/**
 * The two float8 formats of fp8 checkpoints, through libtorch's own conversions: {@code e4m3fn} (bias 7, no infinity,
 * 0x7F/0xFF NaN, max 448) and {@code e5m2} (the high byte of an IEEE half). Decoding is exact; encoding rounds to nearest,
 * ties to even.
 */
public final class Fp8 {
    private Fp8() {}

    public enum Format {
        E4M3FN(DType.F8_E4M3, "e4m3fn", 448), E5M2(DType.F8_E5M2, "e5m2", 57344);

        private final DType dtype;
        private final String goldenName;
        private final double max;

        Format(DType dtype, String goldenName, double max) {
            this.dtype = dtype;
            this.goldenName = goldenName;
            this.max = max;
        }

        public DType dtype() { return dtype; }
        public String goldenName() { return goldenName; }
        /** The largest finite value. */
        public double max() { return max; }

        public static Format of(DType d) {
            for (Format f : values()) if (f.dtype == d) return f;
            throw new IllegalArgumentException(d + " is not a float8 type");
        }
    }

    /** The 256 codes 0..255 as uint8. */
    public static Tensor allCodes() {
        return arange(new Scalar(0), new Scalar(256), new TensorOptions(ScalarType.Short)).to(ScalarType.Byte);
    }

    /** uint8 codes decoded to fp32 (exact; NaN and infinities as such). */
    public static Tensor decode(Tensor codes, Format f) {
        return codes.view(f.dtype.scalarType()).to(ScalarType.Float);
    }

    /** fp32 values encoded to uint8 codes (round to nearest even). */
    public static Tensor encode(Tensor values, Format f) {
        return values.to(ScalarType.Float).to(f.dtype.scalarType()).view(ScalarType.Byte);
    }

    /** 0 finite, 1 NaN, 2 +inf, 3 −inf (uint8). */
    public static Tensor classify(Tensor decoded) {
        Tensor cls = decoded.isnan().to(ScalarType.Byte);
        Tensor posInf = decoded.isposinf(), negInf = decoded.isneginf();
        cls = where(posInf, new Scalar(2), cls.to(ScalarType.Long)).to(ScalarType.Byte);
        return where(negInf, new Scalar(3), cls.to(ScalarType.Long)).to(ScalarType.Byte);
    }
}
