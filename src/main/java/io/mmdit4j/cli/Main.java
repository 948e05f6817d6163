package io.mmdit4j.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code mmdit} command line. */
@Command(name = "mmdit", mixinStandardHelpOptions = true, version = "mmdit4j 0.1.0",
        description = "Diffusion-transformer inference on libtorch, with modulation guidance.",
        subcommands = {CheckGoldenCommand.class, InfoCommand.class, CommandLine.HelpCommand.class})
public final class Main implements Runnable {
    @Override
    public void run() {
        CommandLine.usage(this, System.out);
    }

    public static void main(String[] args) {
        System.exit(new CommandLine(new Main()).execute(args));
    }
}
