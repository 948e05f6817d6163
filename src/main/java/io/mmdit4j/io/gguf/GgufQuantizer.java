package io.mmdit4j.io.gguf;

/**
 * ggml's reference quantizers ({@code quantize_row_*_ref} of ggml-quants.c, no importance matrix) for the types the
 * {@code quantize} command writes: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K. Plain Java over fp32 rows, float
 * arithmetic op by op as the C code evaluates it (no contraction), so the bytes equal llama-quantize's for the same
 * input. An offline tool, not on any forward path.
 */
public final class GgufQuantizer {
    private GgufQuantizer() {}

    /** Whether {@link #quantize} writes {@code type}. */
    public static boolean writes(GgufType type) {
        return switch (type) {
            case Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K -> true;
            default -> false;
        };
    }

    /**
     * Quantizes {@code n} values of {@code x} from {@code xo} (a whole number of blocks) into {@code out} from {@code oo}
     * ({@code n / blockElements · blockBytes} bytes).
     */
    public static void quantize(GgufType type, float[] x, int xo, int n, byte[] out, int oo) {
        int be = type.blockElements(), bb = type.blockBytes();
        if (n % be != 0) throw new IllegalArgumentException(n + " values are not a whole number of " + type + " blocks");
        for (int b = 0; b < n / be; b++) {
            int xi = xo + b * be, o = oo + b * bb;
            switch (type) {
                case Q8_0 -> q8_0(x, xi, out, o);
                case Q4_0 -> q4_0(x, xi, out, o);
                case Q4_1 -> q4_1(x, xi, out, o);
                case Q5_0 -> q5_0(x, xi, out, o);
                case Q5_1 -> q5_1(x, xi, out, o);
                case Q4_K -> qk(x, xi, out, o, false);
                case Q5_K -> qk(x, xi, out, o, true);
                case Q6_K -> q6_K(x, xi, out, o);
                default -> throw new IllegalArgumentException("the quantizer does not write " + type);
            }
        }
    }

    private static void q8_0(float[] x, int xi, byte[] y, int o) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[xi + j]));
        float d = amax / ((1 << 7) - 1);
        float id = d != 0 ? 1.0f / d : 0.0f;
        half(y, o, d);
        for (int j = 0; j < 32; j++) y[o + 2 + j] = (byte) roundf(x[xi + j] * id);
    }

    /** The value of largest magnitude among {@code x[xi..xi+32)} (the first of equals), as ggml's Q4_0 / Q5_0 take it. */
    private static float signedAbsMax(float[] x, int xi) {
        float amax = 0, max = 0;
        for (int j = 0; j < 32; j++) {
            float v = x[xi + j];
            if (amax < Math.abs(v)) {
                amax = Math.abs(v);
                max = v;
            }
        }
        return max;
    }

    private static float min32(float[] x, int xi) {
        float min = Float.MAX_VALUE;
        for (int j = 0; j < 32; j++) min = Math.min(min, x[xi + j]);
        return min;
    }

    private static float max32(float[] x, int xi) {
        float max = -Float.MAX_VALUE;
        for (int j = 0; j < 32; j++) max = Math.max(max, x[xi + j]);
        return max;
    }

    private static void q4_0(float[] x, int xi, byte[] y, int o) {
        float max = signedAbsMax(x, xi);
        float d = max / -8;
        float id = d != 0 ? 1.0f / d : 0.0f;
        half(y, o, d);
        for (int j = 0; j < 16; j++) {
            int xi0 = Math.min(15, (byte) (int) (x[xi + j] * id + 8.5f));
            int xi1 = Math.min(15, (byte) (int) (x[xi + 16 + j] * id + 8.5f));
            y[o + 2 + j] = (byte) (xi0 | (xi1 << 4));
        }
    }

    private static void q4_1(float[] x, int xi, byte[] y, int o) {
        float min = min32(x, xi), max = max32(x, xi);
        float d = (max - min) / ((1 << 4) - 1);
        float id = d != 0 ? 1.0f / d : 0.0f;
        half(y, o, d);
        half(y, o + 2, min);
        for (int j = 0; j < 16; j++) {
            int xi0 = Math.min(15, (byte) (int) ((x[xi + j] - min) * id + 0.5f));
            int xi1 = Math.min(15, (byte) (int) ((x[xi + 16 + j] - min) * id + 0.5f));
            y[o + 4 + j] = (byte) (xi0 | (xi1 << 4));
        }
    }

    private static void q5_0(float[] x, int xi, byte[] y, int o) {
        float max = signedAbsMax(x, xi);
        float d = max / -16;
        float id = d != 0 ? 1.0f / d : 0.0f;
        half(y, o, d);
        int qh = 0;
        for (int j = 0; j < 16; j++) {
            int xi0 = Math.min(31, (byte) (int) (x[xi + j] * id + 16.5f));
            int xi1 = Math.min(31, (byte) (int) (x[xi + 16 + j] * id + 16.5f));
            y[o + 6 + j] = (byte) ((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
            qh |= ((xi0 & 0x10) >>> 4) << j;
            qh |= ((xi1 & 0x10) >>> 4) << (j + 16);
        }
        u32(y, o + 2, qh);
    }

    private static void q5_1(float[] x, int xi, byte[] y, int o) {
        float min = min32(x, xi), max = max32(x, xi);
        float d = (max - min) / ((1 << 5) - 1);
        float id = d != 0 ? 1.0f / d : 0.0f;
        half(y, o, d);
        half(y, o + 2, min);
        int qh = 0;
        for (int j = 0; j < 16; j++) {
            int xi0 = (int) ((x[xi + j] - min) * id + 0.5f) & 0xFF;
            int xi1 = (int) ((x[xi + 16 + j] - min) * id + 0.5f) & 0xFF;
            y[o + 8 + j] = (byte) ((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
            qh |= ((xi0 & 0x10) >>> 4) << j;
            qh |= ((xi1 & 0x10) >>> 4) << (j + 16);
        }
        u32(y, o + 4, qh);
    }

    /** Q4_K (nmax 15) and Q5_K (nmax 31): 8 sub-blocks of 32 with 6-bit scales and mins. */
    private static void qk(float[] x, int xi, byte[] y, int o, boolean five) {
        int nmax = five ? 31 : 15;
        int[] L = new int[256];
        int[] laux = new int[32];
        float[] weights = new float[32];
        float[] mins = new float[8], scales = new float[8];
        float maxScale = 0, maxMin = 0;
        for (int j = 0; j < 8; j++) {
            float sumX2 = 0;
            for (int l = 0; l < 32; l++) sumX2 += x[xi + 32 * j + l] * x[xi + 32 * j + l];
            float avX = (float) Math.sqrt(sumX2 / 32);
            for (int l = 0; l < 32; l++) weights[l] = avX + Math.abs(x[xi + 32 * j + l]);
            float[] min = new float[1];
            scales[j] = five ? makeQkx2(32, nmax, x, xi + 32 * j, weights, L, 32 * j, min, laux, -0.5f, 0.1f, 15)
                    : makeQkx2(32, nmax, x, xi + 32 * j, weights, L, 32 * j, min, laux, -1.0f, 0.1f, 20);
            mins[j] = min[0];
            if (scales[j] > maxScale) maxScale = scales[j];
            if (mins[j] > maxMin) maxMin = mins[j];
        }
        float invScale = maxScale > 0 ? 63.0f / maxScale : 0.0f;
        float invMin = maxMin > 0 ? 63.0f / maxMin : 0.0f;
        int[] sc = new int[12];
        for (int j = 0; j < 8; j++) {
            int ls = Math.min(63, nearestInt(invScale * scales[j]));
            int lm = Math.min(63, nearestInt(invMin * mins[j]));
            if (j < 4) {
                sc[j] = ls;
                sc[j + 4] = lm;
            } else {
                sc[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4);
                sc[j - 4] |= ((ls >> 4) << 6);
                sc[j] |= ((lm >> 4) << 6);
            }
        }
        half(y, o, maxScale / 63.0f);
        half(y, o + 2, maxMin / 63.0f);
        for (int k = 0; k < 12; k++) y[o + 4 + k] = (byte) sc[k];
        float dAll = halfToFloat(y, o), dminAll = halfToFloat(y, o + 2);
        for (int j = 0; j < 8; j++) {
            int s, m;
            if (j < 4) {
                s = sc[j] & 63;
                m = sc[j + 4] & 63;
            } else {
                s = (sc[j + 4] & 0xF) | ((sc[j - 4] >> 6) << 4);
                m = (sc[j + 4] >> 4) | ((sc[j] >> 6) << 4);
            }
            float d = dAll * s;
            if (d == 0) continue;
            float dm = dminAll * m;
            for (int ii = 0; ii < 32; ii++) {
                int l = nearestInt((x[xi + 32 * j + ii] + dm) / d);
                L[32 * j + ii] = Math.max(0, Math.min(nmax, l));
            }
        }
        if (!five) {
            for (int j = 0, q = o + 16; j < 256; j += 64, q += 32) {
                for (int l = 0; l < 32; l++) y[q + l] = (byte) (L[j + l] | (L[j + l + 32] << 4));
            }
            return;
        }
        int qh = o + 16, ql = o + 48;
        for (int k = 0; k < 32; k++) y[qh + k] = 0;
        int m1 = 1, m2 = 2;
        for (int n = 0; n < 256; n += 64) {
            for (int j = 0; j < 32; j++) {
                int l1 = L[n + j];
                if (l1 > 15) {
                    l1 -= 16;
                    y[qh + j] |= (byte) m1;
                }
                int l2 = L[n + j + 32];
                if (l2 > 15) {
                    l2 -= 16;
                    y[qh + j] |= (byte) m2;
                }
                y[ql + j] = (byte) (l1 | (l2 << 4));
            }
            m1 <<= 2;
            m2 <<= 2;
            ql += 32;
        }
    }

    private static float makeQkx2(int n, int nmax, float[] x, int xo, float[] weights, int[] L, int lo, float[] theMin, int[] laux,
                                  float rmin, float rdelta, int nstep) {
        float min = x[xo], max = x[xo];
        float sumW = weights[0];
        float sumX = sumW * x[xo];
        for (int i = 1; i < n; i++) {
            if (x[xo + i] < min) min = x[xo + i];
            if (x[xo + i] > max) max = x[xo + i];
            float w = weights[i];
            sumW += w;
            sumX += w * x[xo + i];
        }
        if (min > 0) min = 0;
        if (max == min) {
            for (int i = 0; i < n; i++) L[lo + i] = 0;
            theMin[0] = -min;
            return 0.0f;
        }
        float iscale = nmax / (max - min);
        float scale = 1 / iscale;
        float bestError = 0;
        for (int i = 0; i < n; i++) {
            int l = nearestInt(iscale * (x[xo + i] - min));
            L[lo + i] = Math.max(0, Math.min(nmax, l));
            float diff = scale * L[lo + i] + min - x[xo + i];
            diff = diff * diff;
            bestError += weights[i] * diff;
        }
        for (int is = 0; is <= nstep; is++) {
            iscale = (rmin + rdelta * is + nmax) / (max - min);
            float sumL = 0, sumL2 = 0, sumXl = 0;
            for (int i = 0; i < n; i++) {
                int l = nearestInt(iscale * (x[xo + i] - min));
                l = Math.max(0, Math.min(nmax, l));
                laux[i] = l;
                float w = weights[i];
                sumL += w * l;
                sumL2 += w * l * l;
                sumXl += w * l * x[xo + i];
            }
            float D = sumW * sumL2 - sumL * sumL;
            if (D > 0) {
                float thisScale = (sumW * sumXl - sumX * sumL) / D;
                float thisMin = (sumL2 * sumX - sumL * sumXl) / D;
                if (thisMin > 0) {
                    thisMin = 0;
                    thisScale = sumXl / sumL2;
                }
                float curError = 0;
                for (int i = 0; i < n; i++) {
                    float diff = thisScale * laux[i] + thisMin - x[xo + i];
                    diff = diff * diff;
                    curError += weights[i] * diff;
                }
                if (curError < bestError) {
                    for (int i = 0; i < n; i++) L[lo + i] = laux[i];
                    bestError = curError;
                    scale = thisScale;
                    min = thisMin;
                }
            }
        }
        theMin[0] = -min;
        return scale;
    }

    private static final float GROUP_MAX_EPS = 1e-15f;

    private static void q6_K(float[] x, int xi, byte[] y, int o) {
        int[] L = new int[256];
        float[] scales = new float[16];
        float maxScale = 0, maxAbsScale = 0;
        for (int ib = 0; ib < 16; ib++) {
            float scale = makeQx(16, 32, x, xi + 16 * ib, L, 16 * ib);
            scales[ib] = scale;
            float abs = Math.abs(scale);
            if (abs > maxAbsScale) {
                maxAbsScale = abs;
                maxScale = scale;
            }
        }
        if (maxAbsScale < GROUP_MAX_EPS) {
            for (int k = 0; k < 210; k++) y[o + k] = 0;
            return;
        }
        float iscale = -128.0f / maxScale;
        half(y, o + 208, 1 / iscale);
        for (int ib = 0; ib < 16; ib++) y[o + 192 + ib] = (byte) Math.min(127, nearestInt(iscale * scales[ib]));
        float dAll = halfToFloat(y, o + 208);
        for (int j = 0; j < 16; j++) {
            float d = dAll * y[o + 192 + j];
            if (d == 0) continue;
            for (int ii = 0; ii < 16; ii++) {
                int l = nearestInt(x[xi + 16 * j + ii] / d);
                l = Math.max(-32, Math.min(31, l));
                L[16 * j + ii] = l + 32;
            }
        }
        int ql = o, qh = o + 128;
        for (int j = 0; j < 256; j += 128) {
            for (int l = 0; l < 32; l++) {
                int q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF, q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
                y[ql + l] = (byte) (q1 | (q3 << 4));
                y[ql + l + 32] = (byte) (q2 | (q4 << 4));
                y[qh + l] = (byte) ((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
            }
            ql += 64;
            qh += 32;
        }
    }

    private static float makeQx(int n, int nmax, float[] x, int xo, int[] L, int lo) {
        float max = 0, amax = 0;
        for (int i = 0; i < n; i++) {
            float ax = Math.abs(x[xo + i]);
            if (ax > amax) {
                amax = ax;
                max = x[xo + i];
            }
        }
        if (amax < GROUP_MAX_EPS) {
            for (int i = 0; i < n; i++) L[lo + i] = 0;
            return 0.0f;
        }
        float iscale = -nmax / max;
        float sumlx = 0, suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = nearestInt(iscale * x[xo + i]);
            l = Math.max(-nmax, Math.min(nmax - 1, l));
            L[lo + i] = l + nmax;
            float w = x[xo + i] * x[xo + i]; // rmse_type 1
            sumlx += w * x[xo + i] * l;
            suml2 += w * l * l;
        }
        float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
        float best = scale * sumlx;
        for (int is = -9; is <= 9; is++) {
            if (is == 0) continue;
            iscale = -(nmax + 0.1f * is) / max;
            sumlx = 0;
            suml2 = 0;
            for (int i = 0; i < n; i++) {
                int l = nearestInt(iscale * x[xo + i]);
                l = Math.max(-nmax, Math.min(nmax - 1, l));
                float w = x[xo + i] * x[xo + i];
                sumlx += w * x[xo + i] * l;
                suml2 += w * l * l;
            }
            if (suml2 > 0 && sumlx * sumlx > best * suml2) {
                for (int i = 0; i < n; i++) {
                    int l = nearestInt(iscale * x[xo + i]);
                    L[lo + i] = nmax + Math.max(-nmax, Math.min(nmax - 1, l));
                }
                scale = sumlx / suml2;
                best = scale * sumlx;
            }
        }
        return scale;
    }

    /** ggml's {@code nearest_int}: round half to even through the 1.5·2^23 trick (|v| < 2^22). */
    static int nearestInt(float v) {
        float val = v + 12582912.0f;
        int i = Float.floatToRawIntBits(val);
        return (i & 0x007fffff) - 0x00400000;
    }

    /** C's {@code roundf}: half away from zero. */
    private static int roundf(float v) {
        return (int) (v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5));
    }

    private static void u32(byte[] y, int o, int v) {
        y[o] = (byte) v;
        y[o + 1] = (byte) (v >>> 8);
        y[o + 2] = (byte) (v >>> 16);
        y[o + 3] = (byte) (v >>> 24);
    }

    private static void half(byte[] y, int o, float v) {
        int h = floatToHalf(v);
        y[o] = (byte) h;
        y[o + 1] = (byte) (h >>> 8);
    }

    private static float halfToFloat(byte[] y, int o) {
        return halfToFloat((y[o] & 0xFF) | (y[o + 1] & 0xFF) << 8);
    }

    /**
     * IEEE binary16 bits to float, exactly as the hardware conversion (ggml's FP16_TO_FP32, libtorch's Half): subnormals,
     * infinities and NaN payloads included.
     */
    public static float halfToFloat(int h) {
        int sign = (h & 0x8000) << 16, exp = (h >>> 10) & 0x1F, mant = h & 0x3FF;
        if (exp == 0x1F) return Float.intBitsToFloat(sign | 0x7F800000 | (mant << 13));
        if (exp == 0) {
            float v = mant * 0x1p-24f; // exact: mant < 2^10
            return sign != 0 ? -v : v;
        }
        return Float.intBitsToFloat(sign | ((exp + 112) << 23) | (mant << 13));
    }

    /** float to IEEE binary16, round to nearest even (overflow to infinity), as ggml's FP32_TO_FP16. */
    public static int floatToHalf(float f) {
        int bits = Float.floatToRawIntBits(f);
        int sign = (bits >>> 16) & 0x8000;
        int exp = (bits >>> 23) & 0xFF;
        int mant = bits & 0x7FFFFF;
        if (exp == 0xFF) return sign | 0x7C00 | (mant != 0 ? 0x200 : 0);
        int e = exp - 127 + 15;
        if (e >= 31) return sign | 0x7C00;
        if (e <= 0) { // subnormal half (or zero)
            if (e < -10) return sign;
            int m = mant | 0x800000;
            int shift = 14 - e;
            int half = m >>> shift;
            int rem = m & ((1 << shift) - 1), mid = 1 << (shift - 1);
            if (rem > mid || (rem == mid && (half & 1) != 0)) half++;
            return sign | half;
        }
        int half = (e << 10) | (mant >>> 13);
        int rem = mant & 0x1FFF;
        if (rem > 0x1000 || (rem == 0x1000 && (half & 1) != 0)) half++;
        return sign | half;
    }
}
