package io.mmdit4j;

import io.mmdit4j.runtime.Torch;
import org.bytedeco.javacpp.BytePointer;

import static org.bytedeco.pytorch.global.torch.get_cpu_capability;

/**
 * The CPU capability libtorch's ATen kernels run with ({@code at::get_cpu_capability()}): {@code DEFAULT}, {@code AVX2}
 * or {@code AVX512} on x86-64, detected from the CPU or forced with {@code ATEN_CPU_CAPABILITY=default|avx2|avx512}.
 * ATen compiles its elementwise kernels once per capability: under AVX2 and AVX512, exp/sin/cos/log are Sleef's
 * vectorised functions and float32 {@code randn} from 16 elements on is the AVX2 Box–Muller fill; under DEFAULT they
 * are the C library's scalar functions and the scalar fill. Values that Python PyTorch printed on an ordinary x86-64
 * machine (AVX2 or AVX-512) are therefore reproducible bit for bit only under a vectorised capability; tests that
 * hard-code such values say what a DEFAULT run can differ by. (Matrix products and convolutions go through OpenBLAS
 * and oneDNN, which choose their kernels from the CPU whatever the capability.)
 */
public final class AtenCapability {
    private AtenCapability() {}

    private static final String NAME;

    static {
        Torch.init();
        try (BytePointer p = get_cpu_capability()) {
            NAME = p.getString();
        }
    }

    /** {@code DEFAULT}, {@code AVX2}, {@code AVX512} (x86-64), or another architecture's name. */
    public static String name() {
        return NAME;
    }

    /** AVX2 or AVX512: ATen's vectorised x86 kernels, those that produced the PyTorch reference values. */
    public static boolean vectorisedX86() {
        return NAME.equals("AVX2") || NAME.equals("AVX512");
    }
}
