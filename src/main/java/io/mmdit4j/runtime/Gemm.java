package io.mmdit4j.runtime;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;

import static org.bytedeco.pytorch.global.torch.createCPUGenerator;
import static org.bytedeco.pytorch.global.torch.mm;
import static org.bytedeco.pytorch.global.torch.randn;

/** Measures matrix-multiply throughput with the current thread settings (for {@code mmdit info} and benchmarks). */
public final class Gemm {
    private Gemm() {}

    /** Best-of-{@code reps} GFLOP/s of an {@code n x n x n} matmul in {@code dtype}. */
    public static double measureGflops(int n, DType dtype, int reps) {
        Torch.init();
        try (PointerScope scope = new PointerScope()) {
            GeneratorOptional gen = new GeneratorOptional(createCPUGenerator(0));
            Tensor a = randn(new long[] {n, n}, gen, new TensorOptions(dtype.scalarType()));
            Tensor b = randn(new long[] {n, n}, gen, new TensorOptions(dtype.scalarType()));
            mm(a, b).close(); // warm-up
            long best = Long.MAX_VALUE;
            for (int i = 0; i < reps; i++) {
                long t0 = System.nanoTime();
                mm(a, b).close();
                best = Math.min(best, System.nanoTime() - t0);
            }
            return 2.0 * n * n * (double) n / best;
        }
    }
}
