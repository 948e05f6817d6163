package io.mmdit4j.cli;

import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Gemm;
import io.mmdit4j.runtime.Torch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.util.Locale;
import java.util.concurrent.Callable;

/** {@code mmdit info}: the native build, thread settings, and the measured GEMM rate of this machine. */
@Command(name = "info", mixinStandardHelpOptions = true,
        description = "Print the libtorch build and thread settings, and measure fp32/bf16 GEMM throughput.")
final class InfoCommand implements Callable<Integer> {
    @Option(names = "--gemm", defaultValue = "2048", description = "square GEMM size to time (0 skips the measurement)")
    int size;

    @picocli.CommandLine.Mixin
    ThreadsOption threads = new ThreadsOption();

    @Override
    public Integer call() {
        threads.apply();
        System.out.println(Torch.describe());
        if (size > 0) {
            int n = Torch.threads();
            for (DType dtype : new DType[] {DType.F32, DType.BF16}) {
                double gflops = Gemm.measureGflops(size, dtype, 3);
                System.out.printf(Locale.ROOT, "gemm %dx%dx%d %s, %d threads: %.1f GFLOP/s%n", size, size, size, dtype.torchName(), n, gflops);
            }
            if (n > 1) {
                // What a missing OpenBLAS thread setting costs (or what one core gives): same GEMM on 1 thread.
                Torch.setThreads(1);
                double one = Gemm.measureGflops(size, DType.F32, 3);
                Torch.setThreads(n);
                System.out.printf(Locale.ROOT, "gemm %dx%dx%d float32, 1 thread: %.1f GFLOP/s%n", size, size, size, one);
            }
        }
        return 0;
    }
}
