package io.mmdit4j.cli;

import io.mmdit4j.runtime.Torch;
import picocli.CommandLine.Option;

/** {@code --threads N} of every command that computes. */
final class ThreadsOption {
    @Option(names = "--threads", description = "CPU threads (default: all cores)")
    Integer threads;

    /** Sets libtorch's thread count when the option is given. */
    void apply() {
        if (threads != null) Torch.setThreads(threads);
    }
}
