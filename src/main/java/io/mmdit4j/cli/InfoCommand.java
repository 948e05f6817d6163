package io.mmdit4j.cli;

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

    @Option(names = "--threads", description = "CPU threads (default: all cores)")
    Integer threads;

    @Override
    public Integer call() {
        if (threads != null) Torch.setThreads(threads);
        System.out.println(Torch.describe());
        if (size > 0) {
            for (var dtype : new io.mmdit4j.runtime.DType[] {io.mmdit4j.runtime.DType.F32, io.mmdit4j.runtime.DType.BF16}) {
                double gflops = Gemm.measureGflops(size, dtype, 3);
                System.out.printf(Locale.ROOT, "gemm %dx%dx%d %s: %.1f GFLOP/s%n", size, size, size, dtype.torchName(), gflops);
            }
        }
        return 0;
    }
}
