package io.mmdit4j.cli;

import io.mmdit4j.research.StatsPlots;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code mmdit plot}: line plots of a sweep's modulation statistics, one PNG per cell. */
@Command(name = "plot", mixinStandardHelpOptions = true, description = "Plot modulation statistics (a sweep folder or its stats.csv) as PNG line charts.")
final class PlotCommand implements Callable<Integer> {
    @Parameters(index = "0", description = "a sweep output folder or its stats.csv")
    Path input;
    @Option(names = "--out", description = "output folder (default: plots/ beside stats.csv)")
    Path out;
    @Option(names = "--cell", description = "only this cell id (repeatable)")
    List<String> cells = new ArrayList<>();
    @Option(names = "--step", description = "a denoising step to draw (repeatable; default: first, middle and last)")
    List<Integer> steps = new ArrayList<>();

    @Override
    public Integer call() throws IOException {
        Path stats = Files.isDirectory(input) ? input.resolve("stats.csv") : input;
        Path dir = out != null ? out : stats.toAbsolutePath().resolveSibling("plots");
        List<Path> files = StatsPlots.plotAll(stats, dir, cells, steps);
        files.forEach(System.out::println);
        System.err.println("plot: " + files.size() + " PNGs in " + dir);
        return 0;
    }
}
