package io.mmdit4j.cli;

import io.mmdit4j.io.ModelFormatException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code mmdit} command line. */
@Command(name = "mmdit", mixinStandardHelpOptions = true, version = "mmdit4j 0.1.0",
        description = "Diffusion-transformer inference on libtorch, with modulation guidance.",
        footer = {"", "./mmdit spark --input prompts.jsonl --out DIR: one image per row of a table on Apache Spark (the spark/ module; ./mmdit spark --help)"},
        subcommands = {GenerateCommand.class, ForwardCommand.class, BenchCommand.class, InspectCommand.class, CheckGoldenCommand.class, InfoCommand.class, SweepCommand.class, PlotCommand.class, TrainCommand.class, EvalShapesCommand.class, CommandLine.HelpCommand.class})
public final class Main implements Runnable {
    @Override
    public void run() {
        CommandLine.usage(this, System.out);
    }

    public static void main(String[] args) {
        System.exit(commandLine().execute(args));
    }

    /**
     * The command line with this project's error policy: bad input is one clear line and exit status 2; a generation that
     * went non-finite (NaN weights) is one line and exit status 1, with nothing written.
     */
    public static CommandLine commandLine() {
        CommandLine cli = new CommandLine(new Main());
        cli.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
            if (e instanceof io.mmdit4j.sampling.NonFiniteException) {
                commandLine.getErr().println("mmdit: error: " + firstLine(e.getMessage()) + "; nothing was written");
                return 1;
            }
            if (e instanceof IllegalArgumentException || e instanceof ModelFormatException
                    || e instanceof java.io.IOException || e instanceof java.io.UncheckedIOException) {
                String m = e instanceof java.nio.file.NoSuchFileException ? e.getMessage() + ": no such file" : e.getMessage();
                commandLine.getErr().println("mmdit: error: " + firstLine(m));
                return 2;
            }
            throw e;
        });
        return cli;
    }

    static String firstLine(String m) {
        if (m == null) return "(no message)";
        int nl = m.indexOf('\n');
        return nl < 0 ? m : m.substring(0, nl);
    }
}
