package io.mmdit4j.sampling;

import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/** Raw-bit views of CPU tensors for exact comparisons with values computed by Python PyTorch. */
final class Bits {
    private Bits() {}

    /** The tensor's bytes in row-major order (little-endian, as numpy's {@code tobytes()}). */
    static byte[] bytes(Tensor t) {
        try (PointerScope scope = new PointerScope()) {
            Tensor c = t.contiguous();
            int n = (int) (c.numel() * c.element_size());
            byte[] out = new byte[n];
            if (n > 0) new BytePointer(c.data_ptr()).capacity(n).get(out);
            return out;
        }
    }

    /** SHA-256 of {@link #bytes}: Python's {@code hashlib.sha256(t.contiguous().view(int16/int32).numpy().tobytes())}. */
    static String sha256(Tensor t) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes(t)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** bf16 / fp16 elements as their 16-bit patterns. */
    static short[] shorts(Tensor t) {
        byte[] b = bytes(t);
        short[] s = new short[b.length / 2];
        for (int i = 0; i < s.length; i++) s[i] = (short) ((b[2 * i] & 0xff) | (b[2 * i + 1] << 8));
        return s;
    }
}
