package io.mmdit4j.server;

import io.mmdit4j.cli.Main;
import picocli.CommandLine;

/**
 * The {@code mmdit} command line with the server's two commands added ({@code serve}, {@code loadtest}): every other
 * command is the command line's own. {@code ./mmdit} runs this class (from the server module's jar) when the command is
 * {@code serve} or {@code loadtest}, and the command line's {@link Main} otherwise, so {@code generate} and the rest never
 * load the web stack.
 */
public final class ServerMain {
    private ServerMain() {}

    public static void main(String[] args) {
        System.exit(commandLine().execute(args));
    }

    public static CommandLine commandLine() {
        CommandLine cli = Main.commandLine();
        cli.addSubcommand("serve", new ServeCommand());
        cli.addSubcommand("loadtest", new LoadtestCommand());
        return cli;
    }
}
