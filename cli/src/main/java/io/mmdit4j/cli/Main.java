package io.mmdit4j.cli;

import io.mmdit4j.io.ModelFormatException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code mmdit} command line. */
@Command(name = "mmdit", mixinStandardHelpOptions = true, version = "mmdit4j 0.1.0",
        description = "Diffusion-transformer inference on libtorch, with modulation guidance.",
        footer = {"", "Serving: `mmdit serve` and `mmdit loadtest` come from the server module (./mmdit runs it for them; see ./mmdit serve --help).",
                "./mmdit spark --input prompts.jsonl --out DIR: one image per row of a table on Apache Spark (the spark/ module; ./mmdit spark --help)"},
        subcommands = {GenerateCommand.class, ForwardCommand.class, BenchCommand.class, InspectCommand.class, CheckGoldenCommand.class, InfoCommand.class, SweepCommand.class, PlotCommand.class, TrainCommand.class, QuantizeCommand.class, EvalShapesCommand.class, CommandLine.HelpCommand.class})
public final class Main implements Runnable {
    /** {@code -v}: the engine's log too (loads, phase timings); every subcommand takes it. */
    @CommandLine.Option(names = {"-v", "--verbose"}, scope = CommandLine.ScopeType.INHERIT,
            description = "also print the engine's log (model loads, phase timings)")
    void verbose(boolean on) {
        if (on) Verbosity.set(Verbosity.VERBOSE);
    }

    /** {@code -q}: errors and the files written only. */
    @CommandLine.Option(names = {"-q", "--quiet"}, scope = CommandLine.ScopeType.INHERIT,
            description = "print only errors and the files written (no progress bars, notes or summaries)")
    void quiet(boolean on) {
        if (on) Verbosity.set(Verbosity.QUIET);
    }

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
        Verbosity.set(Verbosity.NORMAL); // each command line starts at the default (tests run many in one JVM)
        CommandLine cli = new CommandLine(new Main());
        cli.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
            if (e instanceof io.mmdit4j.sampling.NonFiniteException) {
                commandLine.getErr().println("mmdit: error: " + firstLine(e.getMessage()) + "; nothing was written");
                return 1;
            }
            if (e instanceof IllegalArgumentException || e instanceof ModelFormatException
                    || e instanceof java.io.IOException || e instanceof java.io.UncheckedIOException) {
                String m = e instanceof java.nio.file.NoSuchFileException ? e.getMessage() + ": no such file" : describe(e);
                commandLine.getErr().println("mmdit: error: " + firstLine(m));
                return 2;
            }
            throw e;
        });
        return cli;
    }

    /** The exception's message; for one without (e.g. a refused connection), its cause's, else its kind in words. */
    static String describe(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            boolean wrapper = t.getCause() != null && t.getCause().toString().equals(t.getMessage()); // new IOException(cause)
            if (t.getMessage() != null && !t.getMessage().isBlank() && !wrapper) return t.getMessage();
        }
        String kind = e.getClass().getSimpleName().replaceAll("(Exception|Error)$", "").replaceAll("([a-z])([A-Z])", "$1 $2").toLowerCase(java.util.Locale.ROOT);
        return kind.isBlank() ? "unexpected failure" : kind;
    }

    static String firstLine(String m) {
        if (m == null) return "(no message)";
        int nl = m.indexOf('\n');
        return nl < 0 ? m : m.substring(0, nl);
    }
}
