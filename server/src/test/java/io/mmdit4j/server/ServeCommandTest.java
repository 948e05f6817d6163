package io.mmdit4j.server;

import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.InetAddress;
import java.net.ServerSocket;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code mmdit serve} and {@code mmdit loadtest} as commands: settings out of range, a port already taken and a loadtest of
 * another machine are one clear line and exit status 2 (no stack trace), and the CLI's own commands stay reachable.
 */
class ServeCommandTest {
    private record Run(int status, String err) {}

    private static Run run(String... args) {
        CommandLine cli = ServerMain.commandLine();
        StringWriter err = new StringWriter();
        cli.setErr(new PrintWriter(err, true));
        cli.setOut(new PrintWriter(new StringWriter(), true));
        int status = cli.execute(args);
        return new Run(status, err.toString());
    }

    private static void assertBadInput(Run r, String message) {
        assertEquals(2, r.status(), r.err());
        assertTrue(r.err().startsWith("mmdit: error: ") && r.err().contains(message), r.err());
        assertTrue(!r.err().contains("\tat "), "no stack trace: " + r.err());
    }

    @Test
    void settingsOutOfRangeAreRefusedBeforeTheModelLoads() {
        assertBadInput(run("serve", "--max-batch", "0"), "--max-batch must be in 1..64, got 0");
        assertBadInput(run("serve", "--max-batch", "65"), "--max-batch must be in 1..64");
        assertBadInput(run("serve", "--queue", "0"), "--queue must be >= 1, got 0");
        assertBadInput(run("loadtest", "--clients", "0"), "--clients must be in 1..256");
        assertBadInput(run("loadtest", "--abort", "0.9"), "--abort must be in 0..0.5");
        assertBadInput(run("loadtest", "--url", "http://10.1.2.3:8080"), "not a loopback address");
    }

    @Test
    void aPortInUseIsOneClearLine() throws Exception {
        try (ServerSocket taken = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            Run r = run("serve", "--port", String.valueOf(taken.getLocalPort()));
            assertBadInput(r, "cannot listen on 127.0.0.1:" + taken.getLocalPort());
            assertTrue(r.err().contains("in use"), r.err());
        }
    }

    @Test
    void theCommandLinesOwnCommandsAreThere() {
        CommandLine cli = ServerMain.commandLine();
        for (String c : new String[] {"serve", "loadtest", "generate", "inspect", "info"}) {
            assertTrue(cli.getSubcommands().containsKey(c), c);
        }
    }
}
